/* model.h — the console's list model: tabs (views), the filter in force, the sort order, the
 * selection and the window of rows held in memory. No ncurses: unit-tested with a fake
 * source. Rows are read through a `struct ui_source` (the store in the real console). */
#ifndef MAILTAP_UI_MODEL_H
#define MAILTAP_UI_MODEL_H

#include "store/store.h"
#include "ui/columns.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The tabs, in order: X(id, label, proto, direction, layout). A new tab (DNS, say) is one
 * line here plus, if its rows differ, a layout in columns.c. */
#define UI_VIEWS(X) \
    X(ALL, "All", -1, -1, UI_LAYOUT_MIXED) \
    X(SMTP_OUT, "Outbound SMTP", MT_PROTO_SMTP, MT_OUTBOUND, UI_LAYOUT_SMTP) \
    X(SMTP_IN, "Inbound SMTP", MT_PROTO_SMTP, MT_INBOUND, UI_LAYOUT_SMTP) \
    X(POP3, "POP3", MT_PROTO_POP3, -1, UI_LAYOUT_MAILBOX) \
    X(IMAP, "IMAP", MT_PROTO_IMAP, -1, UI_LAYOUT_MAILBOX) \
    X(DNS, "DNS", MT_PROTO_DNS, -1, UI_LAYOUT_DNS) \
    X(SUMMARY, "Summary", -1, -1, UI_LAYOUT_NONE)

#define UI_VIEW_ENUM(id, label, proto, dir, layout) UI_VIEW_##id,
enum ui_view { UI_VIEWS(UI_VIEW_ENUM) UI_VIEW_COUNT };

struct ui_view_def {
    const char *label;
    int proto, direction;   /* -1: any */
    enum ui_layout layout;  /* UI_LAYOUT_NONE: not a list */
};
const struct ui_view_def *model_view_def(enum ui_view view);

/* The sort is the store's: a key (enum store_order) and a direction. Descending (the
 * default) is newest first; for status and user, Z-A with the newest first in each. */
const char *model_sort_name(enum store_order order, bool ascending);

/* Where rows come from. query/load follow store_query_sessions()/store_load_session();
 * count returns how many sessions match the filter (limit/offset ignored), < 0 on error. */
struct ui_source {
    void *ctx;
    int (*query)(void *ctx, const struct store_filter *filter, store_session_fn fn, void *fn_ctx);
    long (*count)(void *ctx, const struct store_filter *filter);
    int (*load)(void *ctx, int64_t id, struct mt_session **out);
    const char *(*error)(void *ctx);   /* message of the last failure */
    /* follows store_trace(); NULL: the source cannot trace */
    int (*trace)(void *ctx, const char *key, store_trace_fn fn, void *fn_ctx);
    /* follows store_peer_sessions(); NULL: none known */
    int (*peers)(void *ctx, const struct mt_session *session, struct store_peers *out);
};

#define UI_GREP_MAX 256

struct ui_model;

struct ui_model *model_new(const struct ui_source *source);
void model_free(struct ui_model *model);

/* Rows the screen shows at once; the window held in memory is a few pages around them. */
void model_set_page(struct ui_model *model, int rows);
int model_page(const struct ui_model *model);

/* Each list view remembers its own selection; the filter is shared by all of them.
 * Switching to the summary keeps the list state untouched. Returns < 0 on a query error. */
int model_set_view(struct ui_model *model, enum ui_view view);
enum ui_view model_view(const struct ui_model *model);

/* Filter changes re-run the query and put the selection on the first row. */
int model_set_grep(struct ui_model *model, const char *text);
const char *model_grep(const struct ui_model *model);
int model_toggle_failures(struct ui_model *model);
bool model_failures(const struct ui_model *model);
/* status: enum mt_status, or -1 for any. since/until: µs, 0 for no bound. */
int model_set_filter(struct ui_model *model, int status, int64_t since_us, int64_t until_us);
void model_get_filter(const struct ui_model *model, int *status, int64_t *since_us,
                      int64_t *until_us);
/* Security findings (MT_FLAG_CLEARTEXT_AUTH ... MT_FLAG_CERT_NAME_MISMATCH): only sessions
 * with one of these bits (store_filter.flags_any); 0 for any. */
int model_set_finding(struct ui_model *model, uint32_t flags);
uint32_t model_finding(const struct ui_model *model);
/* The flag a finding word names (flag_name()): "" gives 0 (no filter); false when the word
 * is not a security finding. */
bool model_parse_finding(const char *word, uint32_t *flag);
/* The security-finding words, in flag order: index 0.. until NULL. */
const char *model_finding_word(int index);
int model_clear_filters(struct ui_model *model);
/* s: time, status, user, time... (the direction stays); o: the other direction. */
int model_cycle_sort(struct ui_model *model);
int model_reverse_sort(struct ui_model *model);
enum store_order model_sort(const struct ui_model *model);
bool model_sort_ascending(const struct ui_model *model);

/* The filter the current view runs (grep points into the model). */
void model_filter(const struct ui_model *model, struct store_filter *filter);
/* One line describing the filter in force, e.g. "search "alice" · failures only". */
void model_describe(const struct ui_model *model, char *buf, size_t cap);

/* Re-runs count and window keeping the selection on the same session when it is still
 * there. Returns < 0 on a query error (model_error() says why). */
int model_reload(struct ui_model *model);
/* The database changed (live): new sessions appear without moving what is on screen. When
 * the list is at its very top (first row selected, newest first) it follows new sessions
 * like `tail -f`; otherwise the selected session and the rows around it stay where they
 * are on screen, and model_new_above() counts what arrived above. */
int model_refresh(struct ui_model *model);
long model_new_above(const struct ui_model *model);

/* Moves the selection by delta rows (clamped) and scrolls to keep it visible. */
void model_move(struct ui_model *model, long delta);
/* Scrolls by pages (selection moves along). */
void model_move_page(struct ui_model *model, long pages);
void model_go(struct ui_model *model, long index);   /* -1: last row */
/* Selects the row at screen line `line` (0 = top visible row); false if there is none. */
bool model_click(struct ui_model *model, int line);

/* Makes sure the rows on screen are in memory. Returns < 0 on a query error. */
int model_sync(struct ui_model *model);
long model_total(const struct ui_model *model);
long model_top(const struct ui_model *model);
long model_selected_index(const struct ui_model *model);
/* Row `index` if it is in memory (after model_sync(), every visible row is), else NULL. */
const struct mt_session *model_row(const struct ui_model *model, long index);
const struct mt_session *model_selected(const struct ui_model *model);
/* Loads the selected session with its transcript; the caller frees it. */
int model_load_selected(struct ui_model *model, struct mt_session **out);
/* The user's other sessions open when `session` began, when its deciding line blames them
 * (explain_blames_other_sessions(): a mailbox lock, a connection limit); none else, or
 * when the source cannot say. */
void model_peers(struct ui_model *model, const struct mt_session *session,
                 struct store_peers *out);
const char *model_error(const struct ui_model *model);

/* For tests and the status line: how many queries ran and how many rows they returned. */
void model_stats(const struct ui_model *model, long *queries, long *rows_fetched);

/* ---- message trace (detail view, key t) ---------------------------------------------------- */

/* What store_trace() follows for a session: its first message's Message-ID, else its first
 * recipient, else its user (POP3/IMAP), else its sender. Writes the key to buf and returns
 * what it is ("Message-ID", "recipient", "user", "sender"); NULL when there is none. */
const char *model_trace_key(const struct mt_session *session, char *buf, size_t cap);
/* The same for one message of the session (the one on screen): its Message-ID, else its
 * first recipient, else its sender; any other message index (-1): model_trace_key(). */
const char *model_trace_key_of(const struct mt_session *session, int message, char *buf,
                               size_t cap);

struct ui_trace_hop {
    struct mt_session *session;   /* loaded with its transcript; owned by the trace */
    enum store_trace_match match; /* a guess when it had no Message-ID */
};

struct ui_trace {
    char key[MT_NAME_MAX];
    const char *what;             /* model_trace_key()'s answer */
    int64_t current_id;           /* the session traced from (its hop is marked) */
    struct ui_trace_hop *hops;    /* time order */
    int count, cap;
    int sel, top;
};

/* Traces `session` by model_trace_key(). Returns the number of hops with *out set (free it
 * with model_trace_free()), 0 when nothing can be traced (no key, or no hop: *out NULL), or
 * < 0 on a query error (model_error() says why). */
int model_trace(struct ui_model *model, const struct mt_session *session,
                struct ui_trace **out);
/* model_trace() of one message of the session (model_trace_key_of()). */
int model_trace_message(struct ui_model *model, const struct mt_session *session, int message,
                        struct ui_trace **out);
void model_trace_free(struct ui_trace *trace);
/* Moves the selected hop by delta (clamped), keeping it within a page of `page` rows. */
void model_trace_move(struct ui_trace *trace, int delta, int page);
/* One hop as a line: time, #id, proto/dir, client -> server:port, status, deciding line,
 * and "(by size/time)" when it was matched without a Message-ID. */
void model_trace_line(const struct ui_trace_hop *hop, const char *key, char *buf, size_t cap);
/* Loads session `id` with its transcript (a hop to open); the caller frees it. */
int model_load(struct ui_model *model, int64_t id, struct mt_session **out);


#endif
