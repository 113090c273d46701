/* explain.h — what each status word and each common server reply means for an admin, what
 * to check next, and the severity that colours it: one data table, used by `mailtap show`,
 * the JSON `explanation` and the console's detail view. */
#ifndef MAILTAP_EXPLAIN_H
#define MAILTAP_EXPLAIN_H

#include "protocols/session.h"

/* How a status is shown: green, dim, yellow, red (or bold/underline/dim without colour). */
enum mt_severity {
    MT_SEV_OK,     /* delivered, login_ok */
    MT_SEV_INFO,   /* nothing failed, nothing to see: unknown, no_mail, encrypted, incomplete */
    MT_SEV_WARN,   /* went wrong, but transient or partly done: partial, aborted, reset,
                      temp_failed */
    MT_SEV_FAIL,   /* a server or the network said no */
};

struct mt_explain {
    enum mt_severity severity;
    const char *meaning;   /* one sentence, plain language */
    const char *check;     /* what to look at next */
};

/* Never NULL: out-of-range statuses get the entry of MT_STATUS_UNKNOWN. */
const struct mt_explain *explain_status(enum mt_status status);

/* As explain_status(), for a status decided by status_line: where one status covers
 * events an admin reads differently, the line says which (an interrupted session whose
 * deciding line is the server's own goodbye, "-ERR [SYS/TEMP] Server shutting down." or
 * "* BYE ...": the server ended it and said why; no command of the client was cut).
 * Never NULL. */
const struct mt_explain *explain_decision(enum mt_status status, const char *status_line);

/* The deciding line speaks of other sessions of the user: a mailbox lock ("-ERR [IN-USE]",
 * "NO [INUSE]") or a connection limit ("[LIMIT]", "Maximum number of connections"). Those
 * open at the time are worth naming beside it. */
bool explain_blames_other_sessions(const char *line, size_t len);
/* The connection-limit half of it ("[LIMIT]", "Maximum number of connections from user+IP
 * exceeded", "too many connections"): a login refused for now, not a wrong password. */
bool explain_connection_limit(const char *line, size_t len);

/* A more precise reason read from the deciding line (enhanced status code, POP3/IMAP
 * response code, well-known words), e.g. "5.1.1" under rcpt_rejected: "the mailbox does not
 * exist". NULL when nothing more precise is known. */
const char *explain_reason(enum mt_status status, const char *status_line);

#endif
