/* explain.h — what each status word means for an admin, what to check next, and how the
 * console colours it. The only place in the console that interprets status words. */
#ifndef MAILTAP_UI_EXPLAIN_H
#define MAILTAP_UI_EXPLAIN_H

#include "protocols/session.h"

/* How a status is shown: green, dim, yellow, red (or bold/underline/dim without colour). */
enum ui_severity {
    UI_SEV_OK,     /* delivered, login_ok */
    UI_SEV_INFO,   /* nothing failed, nothing to see: unknown, no_mail, encrypted, incomplete */
    UI_SEV_WARN,   /* went wrong, but transient or partly done: partial, aborted, reset,
                      temp_failed */
    UI_SEV_FAIL,   /* a server or the network said no */
};

struct ui_explain {
    const char *word;      /* status_name() of the status */
    enum ui_severity severity;
    const char *meaning;   /* one sentence, plain language */
    const char *check;     /* what to look at next */
};

/* Never NULL: out-of-range statuses get the entry of MT_STATUS_UNKNOWN. */
const struct ui_explain *explain_status(enum mt_status status);

/* A more precise reason read from the deciding line (enhanced status code, POP3/IMAP
 * response code, well-known words), e.g. "5.1.1" under rcpt_rejected: "the mailbox does not
 * exist". NULL when nothing more precise is known. */
const char *explain_reason(enum mt_status status, const char *status_line);

#endif
