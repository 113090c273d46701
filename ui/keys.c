/* keys.c — key lookup and help rows, both generated from UI_REQUESTS (keys.h). */
#include "keys.h"

#include <curses.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define KEYS_MAX 8

struct binding {
    enum ui_request request;
    const char *help;
    int keys[KEYS_MAX];   /* 0 ends the list */
};

#define UI_BINDING(name, help_text, ...) { REQ_##name, help_text, { __VA_ARGS__ } },
static const struct binding bindings[REQ_COUNT] = { UI_REQUESTS(UI_BINDING) };

enum ui_request keys_request(int key)
{
    for (int i = 0; i < REQ_COUNT; i++)
        for (int k = 0; k < KEYS_MAX && bindings[i].keys[k]; k++)
            if (bindings[i].keys[k] == key)
                return bindings[i].request;
    return REQ_NONE;
}

int keys_help_count(void)
{
    return REQ_COUNT;
}

const char *keys_help_text(int index)
{
    return index >= 0 && index < REQ_COUNT ? bindings[index].help : "";
}

void keys_name(int key, char *buf, size_t cap)
{
    static const struct { int key; const char *name; } names[] = {
        { KEY_DOWN, "Down" }, { KEY_UP, "Up" }, { KEY_LEFT, "Left" }, { KEY_RIGHT, "Right" },
        { KEY_NPAGE, "PgDn" }, { KEY_PPAGE, "PgUp" }, { KEY_HOME, "Home" }, { KEY_END, "End" },
        { '\n', "Enter" }, { '\r', "Enter" }, { KEY_ENTER, "Enter" }, { UI_KEY_ESC, "Esc" },
        { KEY_BACKSPACE, "Backspace" }, { '\t', "Tab" }, { KEY_BTAB, "Shift-Tab" },
        { ' ', "Space" }, { KEY_MOUSE, "Mouse" },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].key == key) {
            snprintf(buf, cap, "%s", names[i].name);
            return;
        }
    if (key >= KEY_F(1) && key <= KEY_F(12))
        snprintf(buf, cap, "F%d", key - KEY_F(0));
    else if (key > 0 && key < 0x20)
        snprintf(buf, cap, "^%c", key + '@');
    else if (key > 0x20 && key < 0x7f)
        snprintf(buf, cap, "%c", key);
    else
        snprintf(buf, cap, "key %d", key);
}

void keys_help_label(int index, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    if (index < 0 || index >= REQ_COUNT)
        return;
    char names[KEYS_MAX][16];
    for (int k = 0; k < KEYS_MAX && bindings[index].keys[k] && len < cap; k++) {
        bool seen = false;
        keys_name(bindings[index].keys[k], names[k], sizeof names[k]);
        /* Enter has three codes; name it once. */
        for (int j = 0; j < k; j++)
            seen = seen || strcmp(names[j], names[k]) == 0;
        if (!seen)
            len += (size_t)snprintf(buf + len, cap - len, "%s%s", len ? " " : "", names[k]);
    }
}
