/* detail.h — the detail view's content: the session header with the status explained and
 * the transcript, as logical lines, wrapped into screen rows for a given width, with
 * scrolling and search. No ncurses: unit-testable. */
#ifndef MAILTAP_UI_DETAIL_H
#define MAILTAP_UI_DETAIL_H

#include "protocols/session.h"
#include "protocols/explain.h"
#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>

enum detail_kind {
    DL_FIELD,       /* "Label    value" in the header */
    DL_STATUS,      /* the status line of the header, coloured by severity */
    DL_SECTION,     /* a rule with a title */
    DL_CLIENT,      /* transcript: C: */
    DL_SERVER,      /* transcript: S: */
    DL_NOTE,        /* transcript: I: (mailtap's own notes) */
};

struct detail_line {
    enum detail_kind kind;
    enum mt_severity severity;   /* DL_STATUS */
    bool deciding;               /* the transcript line that decided the status */
    int indent;                  /* columns continuation rows are indented by */
    int message;                 /* the index of the message whose block it is in, or -1 */
    char *text;                  /* unguarded: draw.c guards it */
};

/* One screen row: a slice of a logical line. */
struct detail_row {
    int line;
    size_t start, len;           /* bytes of the line's text */
    bool continuation;           /* draw `indent` spaces first */
};

struct ui_detail;

/* Builds the view from a session loaded with its transcript; takes ownership of it.
 * NULL on allocation failure (the session is freed). */
struct ui_detail *detail_new(struct mt_session *session);
/* The same, with the user's other sessions open at the time (model_peers()), named under
 * the deciding line that blames them ("Also open"). */
struct ui_detail *detail_new_with_peers(struct mt_session *session,
                                        const struct store_peers *peers);
void detail_free(struct ui_detail *detail);
/* The sessions its "Also open" lines name (detail_new_with_peers()), oldest first: how
 * many, how many there were in all (the lines name five at most), and the id of the i-th. */
size_t detail_peer_count(const struct ui_detail *detail);
size_t detail_peer_total(const struct ui_detail *detail);
int64_t detail_peer_id(const struct ui_detail *detail, size_t i);
const struct mt_session *detail_session(const struct ui_detail *detail);

/* (Re)wraps the lines for a screen `width` columns wide; keeps the top line in view. */
void detail_layout(struct ui_detail *detail, int width, bool utf8);
int detail_line_count(const struct ui_detail *detail);
const struct detail_line *detail_line(const struct ui_detail *detail, int index);
int detail_row_count(const struct ui_detail *detail);
const struct detail_row *detail_row(const struct ui_detail *detail, int index);

/* The first row of the deciding transcript line, -1 if none. */
int detail_deciding_row(const struct ui_detail *detail);

int detail_top(const struct ui_detail *detail);
/* The message the reader asks about: as the view opens, the one whose outcome is the
 * session's status (it decided it); once scrolled, the first message block within the
 * `page` rows from the top (none: the deciding one again); -1 for a session without
 * messages. */
int detail_message_in_view(const struct ui_detail *detail, int page);
/* Scrolls to `top` (clamped so a page of `page` rows stays filled). */
void detail_scroll_to(struct ui_detail *detail, int top, int page);

/* The next row (dir +1) or previous row (dir -1) after `from` holding `needle`
 * (ASCII case-insensitive), wrapping around; -1 when none does. from -1 searches from the
 * start (dir +1). */
int detail_find(const struct ui_detail *detail, const char *needle, int from, int dir);

#endif
