/* output.h — printing sessions for `mailtap list` and `mailtap show`: the connection-track
 * table, JSON lines, and the detail view with the transcript. Times are printed in UTC.
 * Every function only reads the session; write errors are left in the FILE (ferror). */
#ifndef MAILTAP_OUTPUT_H
#define MAILTAP_OUTPUT_H

#include "protocols/session.h"
#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Which header labels to print. Rows share one grid whatever the view:
 *   ID  Date/Time (UTC)  Type  IP  Sender|User  Recipient(s)|Counters  Status
 * Type is in/out for SMTP (by direction) and pop3/imap for mailbox access; IP is the
 * client's for inbound sessions and the server's for outbound ones. 100 columns. */
enum output_view {
    OUTPUT_VIEW_MIXED,    /* any protocol */
    OUTPUT_VIEW_SMTP,     /* SMTP only */
    OUTPUT_VIEW_MAILBOX,  /* POP3 and IMAP only */
    OUTPUT_VIEW_DNS,      /* DNS rows only: the query and its answer */
};

void output_table_header(FILE *out, enum output_view view);
void output_table_row(FILE *out, const struct mt_session *session);

/* One JSON object on one line (with the newline). */
void output_json(FILE *out, const struct mt_session *session);
/* The detail view: header block, then the transcript with the deciding line marked ">>". */
void output_show(FILE *out, const struct mt_session *session);
/* output_json() plus "transcript": [{"ts", "dir", "text"}, ...]. */
void output_show_json(FILE *out, const struct mt_session *session);
/* The same, with the user's other sessions open at the time (store_peer_sessions(); shown
 * as "Also open", JSON "also_open": [{"id", "client_ip", "start_ts", "end_ts", "status"}]). */
void output_show_peers(FILE *out, const struct mt_session *session,
                       const struct store_peers *peers, bool json);
/* The "Also open" lines of the detail views, for show and the console alike: how many
 * (0 when peers is NULL or was not looked for), and line i of them: one a session ("#3
 * from 192.168.1.50 since 13:37:33.291 (login_ok, until 13:38:18.319)", with the date where
 * it is not the day of day_us, the refused session's start), then "and N more"; or "none
 * seen ...". */
size_t output_peer_lines(const struct store_peers *peers);
void output_peer_line(char *buf, size_t cap, const struct store_peers *peers, size_t i,
                      int64_t day_us);

/* One hop of `mailtap trace`: when, where from and to, what happened. */
/* One trace hop on one line. key: what was traced (a Message-ID names the retrieved
 * message on a POP3/IMAP hop); NULL or "" for none. */
void output_trace_hop(FILE *out, const struct mt_session *session, enum store_trace_match match,
                      const char *key);
/* output_json() plus how the hop was found ("matched_by": "message_id", "address" or
 * "size_time", a guess) and its own outcome for the key ("hop_status", "hop_line": the
 * traced message's or recipient's, not the whole session's). */
void output_json_trace_hop(FILE *out, const struct mt_session *session, enum store_trace_match match,
                           const char *key);

/* One capture source's latest statistics for `mailtap stats`: the newest row of its
 * latest run, sessions per minute over the last minutes and over the whole run (< 0:
 * unknown). The run's rate is over the samples kept, from run_since_us (retention prunes
 * old samples, a SIGHUP starts a new file without them): said so. JSON: one object per
 * line, times as in `list` ("time" ISO, "ts" epoch seconds). */
struct store_sensor_stats;
void output_sensor_stats(FILE *out, const struct store_sensor_stats *newest, double recent_rate,
                         double run_rate, int64_t run_since_us, bool json);

/* Helpers the console shares. */

enum output_time_style {
    OUTPUT_TIME_DATE,     /* "2026-01-07 16:54:15" */
    OUTPUT_TIME_ISO,      /* "2026-01-07T16:54:15.123456Z" */
    OUTPUT_TIME_CLOCK,    /* "16:54:15.123" */
};
/* Formats us (µs since the epoch) in UTC into buf (capacity >= 32). Returns buf. */
char *output_time(char *buf, size_t cap, int64_t us, enum output_time_style style);

/* The certificate as `show` and the console word it (both say the same):
 * validity: "" or "  EXPIRED at the time" / "  NOT YET VALID at the time";
 * name: "" or which name did not match and where it came from (NULL: none);
 * absence: why no certificate is shown, or NULL when there is one or no handshake. */
const char *output_cert_validity(const struct mt_tls_info *t, int64_t start_us, uint32_t flags);
const char *output_cert_name(char *buf, size_t cap, const struct mt_session *s);
const char *output_cert_absence(const struct mt_tls_info *t);
/* The other way, for --since/--until and the console's filter form: "2026-01-07",
 * "2026-01-07 16:54[:15]" or with 'T' (UTC, a 'Z' allowed), epoch seconds, or relative to
 * now_us: "-15m", "-2h", "-1d", "-30s". "" means no bound (0). False when not a time. */
bool output_parse_time(const char *text, int64_t now_us, int64_t *out_us);

/* Short POP3/IMAP counters, like a server's log line: "retr=2/50K del=2". */
void output_counters(char *buf, size_t cap, const struct mt_session *session);

/* One transcript line, pointing into session->transcript (text is not NUL-terminated). */
struct output_line {
    int64_t ts_us;
    char dir;             /* 'C' client, 'S' server, 'I' note; '?' if the line is malformed */
    const char *text;
    size_t len;
};
/* Reads the transcript line at *pos and advances *pos; false at the end. */
bool output_transcript_next(const struct mt_session *session, size_t *pos,
                            struct output_line *line);

#endif
