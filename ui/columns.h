/* columns.h — the list's columns: which ones each layout shows, how wide they are for a
 * given terminal width, and the text of a cell. No ncurses: the layout is unit-tested. */
#ifndef MAILTAP_UI_COLUMNS_H
#define MAILTAP_UI_COLUMNS_H

#include "protocols/session.h"

#include <stddef.h>

enum ui_layout {
    UI_LAYOUT_MIXED,    /* All: both kinds of rows in one grid */
    UI_LAYOUT_SMTP,
    UI_LAYOUT_MAILBOX,  /* POP3 and IMAP */
    UI_LAYOUT_DNS,      /* DNS lookups */
    UI_LAYOUT_NONE,     /* not a list (the summary) */
};

enum ui_column {
    COL_TIME, COL_TYPE, COL_IP, COL_SENDER, COL_RCPTS, COL_USER, COL_COUNTERS,
    COL_QUESTION, COL_ANSWER,   /* DNS: "MX example.com"; the records or the error */
    COL_WHO,    /* mixed: sender (SMTP) or user (POP3/IMAP) */
    COL_WHAT,   /* mixed: recipients (SMTP) or counters (POP3/IMAP) */
    COL_STATUS,
    COL_PORT,   /* the server's: 110 or 995, 143 or 993, 25, 465 or 587 */
    COL_REPLY,  /* the line that decided the status: "NO [OVERQUOTA] ...", "550 5.1.1 ..." */
    COL_COUNT
};

#define UI_COLUMNS_MAX 8

struct ui_colpos {
    enum ui_column col;
    int x, width;
};

/* Fills out[] with the visible columns of `layout` for a screen `width` columns wide (one
 * space between columns) and returns how many. Narrow screens shrink columns to their
 * minimum, then hide the least useful ones; wide screens give the rest to the address
 * columns. */
int columns_layout(enum ui_layout layout, int width, struct ui_colpos out[UI_COLUMNS_MAX]);

/* The column's title, a shorter one when the long one does not fit in width. */
const char *columns_title(enum ui_column col, int width);

/* A deciding line as an admin reads it: without the IMAP command tag the server's answer
 * begins with ("a7 NO [OVERQUOTA] ..." is "NO [OVERQUOTA] ..."). Points into line. */
const char *columns_reply_text(const char *line);

/* The unguarded text of a cell (draw.c guards and fits it). The time cell adapts to
 * `width`: "2026-01-07 16:54:15", "01-07 16:54:15" or "16:54:15". */
void columns_cell(enum ui_column col, const struct mt_session *session, int width,
                  char *buf, size_t cap);

#endif
