/* explain.c — the status table: severity (colour), meaning and advice per status word, and
 * the finer reasons recognised in a deciding line (RFC 3463 enhanced codes, POP3/IMAP
 * response codes, and the usual Postfix, Exim, Exchange, Dovecot, Gmail and Microsoft 365
 * texts). Severity choices, in one place:
 *   green  delivered, login_ok
 *   dim    unknown, no_mail, encrypted, incomplete — not failures (status_is_failure() is
 *          false): incomplete only means the capture did not see the end
 *   yellow partial, aborted, reset, temp_failed — failures that are often transient or only
 *          partly failed: the sender retries a 4xx, an abort may be the client's choice
 *   red    every other failure: a 5xx, a rejected login, a refused or unanswered connection */
#include "protocols/explain.h"

#include "protocols/text.h"

#include <stddef.h>
#include <string.h>

#define ENTRY(status, sev, meaning_text, check_text) \
    [status] = { MT_SEV_##sev, meaning_text, check_text },

static const struct mt_explain table[MT_STATUS_COUNT] = {
    ENTRY(MT_STATUS_UNKNOWN, INFO, "mailtap could not tell how this connection ended",
          "the transcript")
    ENTRY(MT_STATUS_DELIVERED, OK, "the server accepted the message for every recipient",
          "further down the path: the next hop, the recipient's mailbox, the spam folder")
    ENTRY(MT_STATUS_LOGIN_OK, OK, "the user logged in",
          "nothing wrong with the login; the counters show what was fetched or deleted")
    ENTRY(MT_STATUS_NO_MAIL, INFO, "the connection ended without any mail transaction",
          "usually a monitor or a client that gave up; read the transcript")
    ENTRY(MT_STATUS_ENCRYPTED, INFO, "TLS started: the rest of the connection is unreadable",
          "nothing more to see passively; the transcript shows the plaintext part")
    ENTRY(MT_STATUS_PARTIAL, WARN, "the message was accepted, but some recipients were rejected "
          "or deferred", "the refused recipients' replies below: 550 5.1.1 is often a "
          "mistyped address; a 4xx (deferred) is tried again by the sender")
    ENTRY(MT_STATUS_INCOMPLETE, INFO, "the capture did not see how the connection ended: still "
          "open at the end, packets lost, or a handshake that never completed",
          "not a server failure: capture longer, check that the mirror port copies both "
          "directions, or raise --max-streams (the status line says which)")
    ENTRY(MT_STATUS_ABORTED, WARN, "a transaction started but was never finished",
          "the side that ended it (the status line says, when its RST was seen): a client "
          "timeout, crash or a reply it did not like, or a server dropping the connection; "
          "when only the reply to the whole message is missing, the server's log says "
          "whether it was queued (a client retry may duplicate it)")
    ENTRY(MT_STATUS_RESET, WARN, "the connection was reset before anything conclusive happened",
          "a network device or either side killing the connection")
    ENTRY(MT_STATUS_INTERRUPTED, FAIL, "the connection was closed in the middle of a command: "
          "its reply never came (or came only in part)",
          "the server's log at that moment: a crash, a timeout or a limit dropping the "
          "connection; else a device between, or a client that gave up (the status line names "
          "the command)")
    ENTRY(MT_STATUS_MAILBOX_FAILED, FAIL,
          "the server failed a mailbox command (the mail could not be read, listed, deleted or "
          "saved), or refused the login for a reason of its own (account disabled, POP/IMAP "
          "access off, a server error): not the password; the status line is its reply",
          "the server's log for that user: a locked, corrupt or missing mailbox, permissions, "
          "quota, or a server bug; a message another client deleted meanwhile")
    ENTRY(MT_STATUS_TEMP_FAILED, WARN,
          "the server said 'try again later': SMTP 4xx (greylisting, deferral, rate limit), "
          "or a POP3/IMAP login refused for now (mailbox in use, login delay, backend down)",
          "usually harmless, the client retries; if it persists, read the reply text")
    ENTRY(MT_STATUS_RCPT_REJECTED, FAIL, "the server rejected every recipient of a message",
          "the address: 5.1.1 no such mailbox, 5.2.2 mailbox full, 5.7.x policy")
    ENTRY(MT_STATUS_RELAY_DENIED, FAIL, "the server refused to relay mail to that domain",
          "the client must authenticate (SMTP AUTH) or send through its own server")
    ENTRY(MT_STATUS_SENDER_REJECTED, FAIL, "the server rejected the sender: its address (MAIL "
          "FROM), or the client's name or IP (Postfix checks these when the recipients come)",
          "the sender domain, SPF policy, the HELO name and reverse DNS, the client IP on a "
          "blocklist, or whether authentication is required (530)")
    ENTRY(MT_STATUS_TOO_BIG, FAIL, "the message is larger than the server accepts",
          "the message size against the SIZE the server advertised after EHLO")
    ENTRY(MT_STATUS_CONTENT_REJECTED, FAIL,
          "the server refused the message after reading it: spam, virus or policy filter",
          "the reply text names the filter; check the content, DKIM/SPF/DMARC, blocklists")
    ENTRY(MT_STATUS_AUTH_FAILED, FAIL, "the server rejected the password (every login failed)",
          "the user's password or account status; the server's text is kept below")
    ENTRY(MT_STATUS_LOGIN_DISABLED, FAIL, "the server refuses plaintext login before TLS",
          "the client must use STARTTLS/STLS or the TLS port")
    ENTRY(MT_STATUS_SERVER_REJECTED, FAIL, "the server refused the client in its greeting",
          "server overload, the client IP on a blocklist, connection limits")
    ENTRY(MT_STATUS_NO_RESPONSE, FAIL, "the server never answered (no SYN-ACK, no greeting, or "
          "no reply to a command for a minute or more)",
          "server down, a firewall dropping packets, routing, or a hung server")
    ENTRY(MT_STATUS_REFUSED, FAIL, "nothing listens on that port: the SYN was answered by a reset",
          "is the mail service running? is a firewall rejecting the connection?")
    ENTRY(MT_STATUS_TLS_FAILED, FAIL, "TLS failed (the handshake, or STARTTLS refused), so no "
          "mail could be exchanged",
          "the alert: protocol_version = TLS versions do not overlap, "
          "handshake_failure = no common cipher, bad/unknown certificate = trust problem; "
          "a refused STARTTLS: the server's TLS setup")
    ENTRY(MT_STATUS_DNS_FAILED, FAIL,
          "the recipient's mail server could not be found: its MX lookup failed",
          "the domain's DNS (MX records), a typo in the recipient's domain, or our resolver")
    ENTRY(MT_STATUS_RESOLVED, OK, "the DNS lookup was answered", "the answers below")
    ENTRY(MT_STATUS_NO_DATA, INFO,
          "the name exists but has no record of the type asked for (NODATA)",
          "usually nothing: a host without IPv6 has no AAAA record, and a domain without MX "
          "takes mail at its A record (RFC 5321 5.1); a problem only if that record should exist")
    ENTRY(MT_STATUS_DNS_ERROR, FAIL,
          "the DNS lookup failed (no such domain, server failure or refused)",
          "the name queried, the domain's DNS servers, or the resolver's configuration")
    ENTRY(MT_STATUS_TIMEOUT, FAIL, "the DNS server never answered the lookup",
          "the resolver's reachability (firewall, port 53) and the name server's health")
};

#define TOO_MANY_INVALID "the server disconnected the client after too many invalid " \
                         "commands: a broken client, a scanner, or a client of another " \
                         "protocol on this port"
#define SERVER_WENT_SILENT "the server went silent after a command: overloaded or hung, or a " \
    "mailbox locked by another process (its log at that time)"
#define LOGIN_HUNG "the server did not answer the login: its authentication backend (LDAP, " \
                   "SQL, a password service) hung or is unreachable"

/* Finer reasons, first match wins. status -1 applies to any status. Patterns are matched
 * case-insensitively anywhere in the deciding line. */
static const struct {
    int status;
    const char *pattern;
    const char *reason;
} reasons[] = {
    /* Provider-specific codes first: they are more precise than the generic class. */
    { -1, "5.7.26", "the message failed DMARC: SPF/DKIM do not align with the From domain "
                    "(Gmail, Microsoft 365)" },
    { -1, "5.7.25", "the client IP has no reverse DNS (PTR) record (Gmail)" },
    { -1, "5.7.27", "the sender domain has no MX or address record (Gmail)" },
    { -1, "5.7.23", "the sender's SPF record does not allow this client (Microsoft 365)" },
    { -1, "5.7.606", "the client IP is banned by Microsoft 365: request delisting" },
    { -1, "5.7.708", "Microsoft 365 does not accept traffic from this IP (reputation)" },
    { -1, "5.7.54", "the server does not relay to that domain (Exchange: non-accepted domain)" },
    { -1, "5.4.1", "the recipient does not exist there (Microsoft 365 directory blocking)" },
    { -1, "4.7.28", "rate limit: too much mail from this sender or IP (Gmail)" },
    { -1, "spamhaus", "the client IP is on the Spamhaus blocklist" },
    { -1, "spamcop", "the client IP is on the SpamCop blocklist" },
    { -1, "barracuda", "the client IP is on the Barracuda blocklist" },
    { -1, "dnsbl", "the client IP is on a DNS blocklist" },
    { -1, " rbl", "the client IP is on a DNS blocklist" },
    { MT_STATUS_INCOMPLETE, "cut by the snap length", "the capture kept only the start of "
      "each packet: capture whole packets (tcpdump -s 0)" },
    { -1, "too many invalid", TOO_MANY_INVALID },   /* before " BAD ": "invalid bad commands" */
    { -1, "too many bad", TOO_MANY_INVALID },
    { MT_STATUS_NO_MAIL, " BAD ", "the server could not parse a command the client sent "
      "(BAD); for LOGIN, a password with spaces, quotes or other special characters that the "
      "client did not quote: the password was never checked" },
    { MT_STATUS_NO_MAIL, "cancelled authentication", "the client gave up its login itself "
      "(a cancelled password prompt, or a mechanism it could not finish)" },
    /* Which of the two "never answered": the handshake, or the greeting after it. */
    { MT_STATUS_NO_RESPONSE, "connection attempt (SYN)", "the SYN was never answered: the "
      "server is down, filtered by a firewall, or unreachable" },
    { MT_STATUS_NO_RESPONSE, "no reply to the end of the message", "the server took the "
      "message and went silent: a hung queue or content filter (its log says which); a client "
      "that times out sends the message again" },
    { MT_STATUS_NO_RESPONSE, "nothing more from the server", "the server began the answer "
      "and stopped: a hung server process or storage, or a client that stopped reading (a "
      "zero receive window: the capture's TCP headers tell which; mailtap does not read them)" },
    { MT_STATUS_NO_RESPONSE, "no reply to LOGIN", LOGIN_HUNG },
    { MT_STATUS_NO_RESPONSE, "no reply to AUTH", LOGIN_HUNG },   /* and AUTHENTICATE */
    { MT_STATUS_NO_RESPONSE, "no reply to PASS", LOGIN_HUNG },
    { MT_STATUS_NO_RESPONSE, "no reply to APOP", LOGIN_HUNG },
    { MT_STATUS_NO_RESPONSE, "when the capture ended", SERVER_WENT_SILENT },
    { MT_STATUS_NO_RESPONSE, "when the idle connection was let go", SERVER_WENT_SILENT },
    { MT_STATUS_NO_RESPONSE, "no reply from the server", "the connection was accepted, but "
      "no greeting followed: the server is overloaded or hung, or a proxy in between" },
    /* Before "Host not found": Postfix's HELO refusal ends with the lookup's words. */
    { -1, "Helo command rejected", "the HELO/EHLO name was refused: use the host's real FQDN" },
    /* The resolver's words before the generic prefix they follow ("Name service error for
     * name=x type=MX: Host not found"): the first match wins. */
    { -1, "Host not found, try again", "a temporary DNS failure: the lookup may succeed later" },
    { -1, "Host not found", "the recipient's domain does not exist in DNS (NXDOMAIN)" },
    { -1, "no data record of requested type",
      "the domain exists but its MX lookup returned no usable record (and no address to fall "
      "back to)" },
    { -1, "Name service error", "the recipient's domain could not be resolved in DNS" },
    { -1, "nullMX", "the recipient's domain publishes a null MX: it takes no mail" },
    { -1, "protocol_version", "client and server share no TLS version (one side too old or "
                              "too strict)" },
    { -1, "handshake_failure", "client and server share no TLS cipher suite" },
    { -1, "certificate_expired", "the peer refused an expired certificate" },
    { -1, "unknown_ca", "the peer does not trust the certificate's issuer" },
    { -1, "bad_certificate", "the peer refused the certificate" },
    { -1, "did not answer with TLS", "the server answered in plaintext: no TLS on this port, "
                                     "or a refusal after STARTTLS (the transcript shows it)" },
    { -1, "no TLS version in common",
      "the client offers only TLS versions the server no longer accepts (1.1 or older, "
      "dropped by current servers): update the client or its TLS settings; allowing them "
      "again on the server weakens it for everyone" },
    { -1, "reset the connection instead of an answer to the ClientHello",
      "the server dropped the handshake at once: typically its TLS library could not load "
      "the key or certificate (its log says so)" },
    { -1, "instead of starting TLS",
      "the client never began TLS after the server agreed: a client or proxy bug; the server "
      "drops such a connection" },
    { -1, "STARTTLS command first", "the server requires STARTTLS before this command" },
    { -1, "Sender address rejected: not logged in",
      "the sender's domain is the server's own: the client must authenticate to use it "
      "(Postfix reject_sender_login_mismatch)" },
    { -1, "Client host rejected", "the client's IP or host name was refused (Postfix client "
                                  "restrictions)" },
    { MT_STATUS_TLS_FAILED, "TLS not available", "the server refused STARTTLS (its TLS is not "
                                                 "set up, or broken): its log says why" },
    { MT_STATUS_TLS_FAILED, "454 ", "the server refused STARTTLS, and the client would not go "
                                    "on without TLS" },
    { -1, "cannot find your hostname", "the client IP has no reverse DNS (Postfix)" },
    { -1, "Domain not found", "the sender's domain does not exist in DNS (Postfix)" },
    { -1, "Unrouteable address", "the server has no route for that address (Exim)" },
    { -1, "over quota", "the mailbox is over its quota" },
    { -1, "quota", "the mailbox is over its quota" },
    { -1, "mailbox full", "the mailbox is full" },
    { -1, "4.3.1", "the server is short of storage: try later" },
    { -1, "rate limit", "a sending rate limit was reached: slow down, retry later" },
    { -1, "dkim", "the message's DKIM signature failed" },
    { -1, "5.1.1", "the mailbox does not exist (wrong or mistyped address)" },
    { -1, "5.1.2", "the recipient's domain does not exist or takes no mail" },
    { -1, "5.1.10", "the recipient's domain publishes a null MX: it takes no mail" },
    { -1, "5.2.1", "the mailbox is disabled" },
    { -1, "5.2.2", "the mailbox is full" },
    { -1, "4.2.2", "the mailbox is full (temporarily)" },
    { -1, "5.3.4", "the message is larger than the server accepts" },
    { -1, "5.7.8", "the server rejected the user name or password" },
    { -1, "5.7.9", "the authentication method is too weak for this server" },
    { -1, "5.7.0", "the server requires authentication first" },
    { -1, "530 ", "the server requires authentication first" },
    { MT_STATUS_RELAY_DENIED, "", "the client is not allowed to relay: authenticate first" },
    { -1, "greylist", "greylisting: the server asks the sender to retry later" },
    { -1, "4.7.1", "greylisting or a policy delay: the sender should retry later" },
    { -1, "spf", "the sender's SPF policy failed for this client" },
    { -1, "dmarc", "the sender domain's DMARC policy rejected the message" },
    { -1, "spam", "a spam filter rejected the message" },
    { -1, "virus", "a virus scanner rejected the message" },
    { -1, "blocklist", "the client IP is on a blocklist" },
    { -1, "blacklist", "the client IP is on a blocklist" },
    { -1, "5.7.1", "rejected by the server's policy (blocklist, SPF/DMARC, not allowed)" },
    /* Dovecot answers a plaintext USER with "-ERR [AUTH] Plaintext authentication
     * disallowed": the code that usually means a wrong password. */
    { MT_STATUS_LOGIN_DISABLED, "", "plaintext login refused: use TLS" },
    { -1, "[AUTH]", "the server refused the login (POP3 [AUTH]): the password, or the account "
                    "itself when its text says so (suspended, disabled)" },
    { -1, "[IN-USE]", "the mailbox is locked by another session (POP3 [IN-USE])" },
    /* Before [SYS/TEMP]: Dovecot says "-ERR [SYS/TEMP] Server shutting down." when stopped. */
    { -1, "shutting down", "the server was being stopped or restarted (a shutdown, an "
                           "upgrade, a configuration reload that ends sessions)" },
    { -1, "[SYS/TEMP]", "a problem on the server it calls temporary (POP3 [SYS/TEMP]); one "
                        "that repeats for a user is a server-side error (a lock, storage, a "
                        "missing mailbox): its log says which" },
    { -1, "[CONTACTADMIN]", "the server refuses this account until an administrator acts "
                            "(IMAP [CONTACTADMIN]: suspended, disabled, or its setup broken)" },
    { -1, "[SERVERBUG]", "the server failed on its own (IMAP [SERVERBUG]): its log has the error "
                         "(a missing or corrupt mailbox, permissions, a bug)" },
    { -1, "[SYS/PERM]", "a permanent problem on the server (POP3 [SYS/PERM])" },
    { -1, "[AUTHENTICATIONFAILED]", "the server rejected the user name or password (IMAP)" },
    { -1, "[AUTHORIZATIONFAILED]", "the login is valid but not allowed to use this mailbox" },
    { -1, "[EXPIRED]", "the password or account has expired" },
    { -1, "[PRIVACYREQUIRED]", "plaintext login refused: use TLS" },
    { -1, "[UNAVAILABLE]", "the login backend is unavailable (temporary)" },
    { -1, "[LIMIT]", "a server limit was reached (too many connections?)" },
    { -1, "maximum number of connections", "the user's connection limit was reached: other "
                                           "sessions of the user are still open" },
    { -1, "LOGINDISABLED", "plaintext login refused: use TLS" },
    { -1, "too many", "a connection or rate limit was reached" },
};

const struct mt_explain *explain_status(enum mt_status status)
{
    if ((int)status < 0 || status >= MT_STATUS_COUNT || !table[status].meaning)
        status = MT_STATUS_UNKNOWN;
    return &table[status];
}

/* interrupted, decided by the server's own last word rather than mailtap's note of a cut */
static const struct mt_explain server_ended_session = {
    MT_SEV_FAIL,
    "the server ended the session of a logged-in user and said why (the status line is its "
    "last word before it closed)",
    "the server's reason and its log at that moment: a shutdown or restart, an administrator "
    "ending the session (doveadm kick), a limit; the client connects again once the server "
    "is back",
};

const struct mt_explain *explain_decision(enum mt_status status, const char *status_line)
{
    size_t len = status_line ? strlen(status_line) : 0;
    bool servers_goodbye = text_starts_with_ci(status_line ? status_line : "", len, "-ERR") ||
                           text_starts_with_ci(status_line ? status_line : "", len, "* BYE");
    if (status == MT_STATUS_INTERRUPTED && servers_goodbye)
        return &server_ended_session;
    return explain_status(status);
}

bool explain_connection_limit(const char *line, size_t len)
{
    static const char *const words[] = { "[LIMIT]", "maximum number of connections",
                                         "too many connections", "too many simultaneous" };
    for (size_t i = 0; line && i < sizeof words / sizeof words[0]; i++)
        if (text_find_ci(line, len, words[i]) >= 0)
            return true;
    return false;
}

bool explain_blames_other_sessions(const char *line, size_t len)
{
    return line && (text_find_ci(line, len, "[IN-USE]") >= 0 ||
                    text_find_ci(line, len, "[INUSE]") >= 0 || explain_connection_limit(line, len));
}

const char *explain_reason(enum mt_status status, const char *status_line)
{
    size_t len = status_line ? strlen(status_line) : 0;
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        if (reasons[i].status >= 0 && reasons[i].status != (int)status)
            continue;
        if (reasons[i].pattern[0] && (!len || text_find_ci(status_line, len, reasons[i].pattern) < 0))
            continue;
        /* Success needs no reason, and a 5.x code alone must not explain a success. */
        if (explain_status(status)->severity == MT_SEV_OK)
            return NULL;
        return reasons[i].reason;
    }
    return NULL;
}
