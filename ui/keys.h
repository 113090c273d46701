/* keys.h — every key binding of the console and its help text, in one X-macro table: the
 * request enum, the key lookup and the help screen are generated from it, so the help can
 * never disagree with the bindings. */
#ifndef MAILTAP_UI_KEYS_H
#define MAILTAP_UI_KEYS_H

#include <stddef.h>

#define UI_KEY_CTRL(c) ((c) & 0x1f)
#define UI_KEY_ESC 27

/* X(request, help text, key, key...) — keys are ncurses key codes (curses.h). */
#define UI_REQUESTS(X) \
    X(DOWN, "next row / scroll down", KEY_DOWN, 'j') \
    X(UP, "previous row / scroll up", KEY_UP, 'k') \
    X(PAGE_DOWN, "page down", KEY_NPAGE, ' ', UI_KEY_CTRL('f')) \
    X(PAGE_UP, "page up", KEY_PPAGE, 'b', UI_KEY_CTRL('b')) \
    X(FIRST, "first row (the list then follows new sessions)", 'g', KEY_HOME) \
    X(LAST, "last row", 'G', KEY_END) \
    X(OPEN, "open the selected session", '\n', '\r', KEY_ENTER) \
    X(BACK, "back to the list (detail, summary, help)", UI_KEY_ESC, KEY_BACKSPACE) \
    X(QUIT, "quit (on the list); back (elsewhere)", 'q') \
    X(NEXT_VIEW, "next tab", '\t') \
    X(PREV_VIEW, "previous tab", KEY_BTAB) \
    X(VIEW_N, "tab 1 to 7 (6: DNS, 7: summary)", '1', '2', '3', '4', '5', '6', '7') \
    X(SUMMARY, "summary: counts, top failure reasons, sessions per minute", 'S') \
    X(SEARCH, "search: the list narrows as you type, from 3 chars; detail: find text", '/') \
    X(SEARCH_NEXT, "next match (list: next row)", 'n') \
    X(SEARCH_PREV, "previous match (list: previous row)", 'N') \
    X(FAILURES, "failures only, on/off", 'F', 'x') \
    X(FILTER, "filter form: status word, failures, since, until, security finding", 'f') \
    X(CLEAR, "clear search and filters", 'c') \
    X(SORT, "sort by time, status or user (cycles)", 's') \
    X(REVERSE, "reverse the sort (newest / oldest first)", 'o') \
    X(DECIDING, "detail: jump to the line that decided the status", 'd') \
    X(TRACE, "detail: trace the message across sessions (Enter opens a hop)", 't') \
    X(ALSO_OPEN, "detail: open the sessions under Also open, one after another (Esc: back)", \
      'a') \
    X(RELOAD, "reload from the database now", 'r', KEY_F(5)) \
    X(REDRAW, "redraw the screen", UI_KEY_CTRL('l')) \
    X(MOUSE, "wheel scrolls; click selects, opens, or picks a tab", KEY_MOUSE) \
    X(HELP, "this help", '?', KEY_F(1))

#define UI_REQUEST_ENUM(name, help, ...) REQ_##name,
enum ui_request { REQ_NONE = -1, UI_REQUESTS(UI_REQUEST_ENUM) REQ_COUNT };

/* The request bound to key (REQ_NONE if none). */
enum ui_request keys_request(int key);

/* Help screen rows, in table order: "j Down", "next row / scroll down". */
int keys_help_count(void);
void keys_help_label(int index, char *buf, size_t cap);
const char *keys_help_text(int index);

/* A key's name as the help screen prints it: "j", "Down", "^L", "Esc", "F5". */
void keys_name(int key, char *buf, size_t cap);

#endif
