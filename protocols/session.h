/* session.h — the decoded record of one mail connection: who talked to whom, what was
 * sent, how it ended, and the masked, sanitized transcript. Every protocol decoder fills
 * one; the store writes it; the CLI and console read it back. All strings held here are
 * already sanitized (text_sanitize) and NUL-terminated. */
#ifndef MAILTAP_SESSION_H
#define MAILTAP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MT_ADDR_MAX 320     /* a mailbox (RFC 5321: 254) after sanitizing */
#define MT_NAME_MAX 256     /* HELO name, user name, server name */
#define MT_TEXT_MAX 512     /* a reply line, a subject */
#define MT_IP_MAX 46        /* INET6_ADDRSTRLEN */

#define MT_RECIPIENTS_MAX 1000        /* per session; more are counted, not kept */
#define MT_MESSAGES_MAX 1000          /* per session */
#define MT_TRANSCRIPT_MAX_BYTES (128 * 1024)
#define MT_TRANSCRIPT_LINE_MAX 1024   /* a longer transcript line is cut, ending in "..." */

/* DNS lookups are recorded as sessions too (one row per lookup), so that list, show and
 * the console treat them like any other row. */
enum mt_proto { MT_PROTO_SMTP, MT_PROTO_POP3, MT_PROTO_IMAP, MT_PROTO_DNS, MT_PROTO_COUNT };

enum mt_direction { MT_INBOUND, MT_OUTBOUND };

/* Which end sent the bytes. */
enum mt_side { MT_CLIENT, MT_SERVER };

/* How the TCP connection ended, as reassembly saw it. */
enum mt_end {
    MT_END_CLOSE,    /* FIN from both sides */
    MT_END_RESET,    /* RST */
    MT_END_TIMEOUT,  /* idle too long (live capture) */
    MT_END_EVICTED,  /* pushed out of a full stream table */
    MT_END_EOF,      /* still open when the input ended */
    MT_END_REFUSED,  /* SYN answered by RST: never established */
    MT_END_UNANSWERED, /* SYN never answered */
};

/* Status words: one list for every protocol. The order here is the severity order used
 * to pick a session's status from its transactions: a later entry is more severe. Keep
 * status_names[] in session.c in step. */
enum mt_status {
    MT_STATUS_UNKNOWN,
    MT_STATUS_DELIVERED,        /* message accepted, no recipient rejected */
    MT_STATUS_LOGIN_OK,         /* POP3/IMAP: authenticated */
    MT_STATUS_NO_MAIL,          /* connection without any transaction */
    MT_STATUS_ENCRYPTED,        /* TLS started; the rest is unreadable */
    MT_STATUS_PARTIAL,          /* accepted, some recipients rejected */
    MT_STATUS_INCOMPLETE,       /* still open when the capture ended */
    MT_STATUS_ABORTED,          /* transaction started, never finished */
    MT_STATUS_RESET,            /* connection reset before anything conclusive */
    MT_STATUS_INTERRUPTED,      /* POP3/IMAP: closed while a command awaited its reply */
    MT_STATUS_MAILBOX_FAILED,   /* POP3/IMAP: the server failed a mailbox command (RETR, SELECT) */
    MT_STATUS_TEMP_FAILED,      /* 4xx: greylisting, deferral, try again later */
    MT_STATUS_RCPT_REJECTED,    /* every recipient rejected (5xx) */
    MT_STATUS_RELAY_DENIED,     /* recipient rejected because relaying is not allowed */
    MT_STATUS_SENDER_REJECTED,  /* MAIL FROM rejected */
    MT_STATUS_TOO_BIG,          /* message size over the server's limit (552 / 5.3.4) */
    MT_STATUS_CONTENT_REJECTED, /* 5xx after the message data */
    MT_STATUS_AUTH_FAILED,      /* every login attempt rejected */
    MT_STATUS_LOGIN_DISABLED,   /* POP3/IMAP: plaintext login refused before TLS */
    MT_STATUS_SERVER_REJECTED,  /* greeting was 421/554 (or -ERR / BYE) */
    MT_STATUS_NO_RESPONSE,      /* SYN unanswered, or server never greeted */
    MT_STATUS_REFUSED,          /* SYN answered by RST */
    /* Not transaction statuses: their place in the order does not matter. */
    MT_STATUS_TLS_FAILED,       /* the TLS handshake died (alert, or cut before completing) */
    MT_STATUS_DNS_FAILED,       /* outbound: the recipient domain's MX lookup failed */
    MT_STATUS_RESOLVED,         /* DNS row: answered with data */
    MT_STATUS_NO_DATA,          /* DNS row: the name exists, with no record of that type */
    MT_STATUS_DNS_ERROR,        /* DNS row: NXDOMAIN, SERVFAIL, REFUSED... */
    MT_STATUS_TIMEOUT,          /* DNS row: no response in time */
    MT_STATUS_COUNT
};

/* Flags on a session: things the admin should know about the record itself. */
enum {
    MT_FLAG_LINE_TRUNCATED = 1u << 0,      /* a line over LR_LINE_MAX was cut */
    MT_FLAG_TRANSCRIPT_CAPPED = 1u << 1,   /* transcript lines were dropped */
    MT_FLAG_RECIPIENTS_CAPPED = 1u << 2,
    MT_FLAG_MESSAGES_CAPPED = 1u << 3,
    MT_FLAG_PROTOCOL_ERROR = 1u << 4,      /* replies that do not parse, desync */
    MT_FLAG_DECRYPTED = 1u << 5,           /* both sides in plaintext after STARTTLS */
    MT_FLAG_CAPTURE_GAP = 1u << 6,         /* bytes are missing from the capture: lost segments */
    /* Security findings */
    MT_FLAG_CLEARTEXT_AUTH = 1u << 7,      /* credentials sent without TLS */
    MT_FLAG_STARTTLS_UNUSED = 1u << 8,     /* the server offered STARTTLS, the client did not use it */
    MT_FLAG_WEAK_TLS = 1u << 9,            /* SSLv3 / TLS 1.0 / TLS 1.1 negotiated */
    MT_FLAG_CERT_EXPIRED = 1u << 10,       /* certificate expired or not yet valid */
    MT_FLAG_CERT_NAME_MISMATCH = 1u << 11, /* certificate does not name the server */
    MT_FLAG_OVERLAP_CONFLICT = 1u << 12,   /* resent TCP bytes differed from the first copy */
};

/* The text members of mt_recipient and mt_message are heap strings sized to their content
 * (char *, NULL meaning ""), owned by the session and freed by session_free(). Read them
 * through mt_str(); write them through session_text_set() / session_text_copy() /
 * session_text_setf() with the member's cap below: the most bytes, NUL included, it may
 * hold (the sizes of the arrays they once were), so long text is cut exactly as before.
 * An element is never copied by assignment (the copy would share its strings). */
#define MT_RCPT_ADDR_MAX MT_ADDR_MAX
#define MT_RCPT_REPLY_MAX MT_TEXT_MAX
#define MT_MSG_MAIL_FROM_MAX MT_ADDR_MAX
#define MT_MSG_HEADER_FROM_MAX MT_TEXT_MAX
#define MT_MSG_HEADER_TO_MAX MT_TEXT_MAX
#define MT_MSG_SUBJECT_MAX MT_TEXT_MAX
#define MT_MSG_DATE_MAX MT_NAME_MAX
#define MT_MSG_MESSAGE_ID_MAX MT_NAME_MAX
#define MT_MSG_REPLY_MAX MT_TEXT_MAX
#define MT_STR_MAX MT_TEXT_MAX   /* the largest of these caps */

struct mt_recipient {
    char *addr;               /* MT_RCPT_ADDR_MAX */
    int code;                 /* reply code to RCPT, 0 when none was seen */
    char *reply;              /* MT_RCPT_REPLY_MAX */
    bool accepted;
    int message;              /* index into messages[] of its transaction */
};

/* One MAIL FROM .. end-of-data transaction. */
struct mt_message {
    char *mail_from;          /* MT_MSG_MAIL_FROM_MAX */
    char *header_from;        /* MT_MSG_HEADER_FROM_MAX */
    char *header_to;          /* MT_MSG_HEADER_TO_MAX */
    char *subject;            /* MT_MSG_SUBJECT_MAX */
    char *date;               /* MT_MSG_DATE_MAX */
    char *message_id;         /* MT_MSG_MESSAGE_ID_MAX */
    uint64_t size;            /* bytes between 354 and the final dot, or BDAT total */
    int reply_code;           /* reply deciding the transaction (end-of-data, or failure) */
    char *reply;              /* MT_MSG_REPLY_MAX */
    enum mt_status status;
    int64_t start_us;
};

/* A heap text member as a string: "" for NULL. */
static inline const char *mt_str(const char *s)
{
    return s ? s : "";
}

/* POP3/IMAP counters, like a mail server's own log line. */
struct mt_mailbox_stats {
    uint64_t retr_count, retr_bytes, top_count, dele_count;
    uint64_t stat_messages, stat_bytes;
    uint64_t fetch_count, fetch_bytes, append_count, append_bytes, expunge_count, deleted_flagged;
    bool idled;
    char mailboxes[MT_TEXT_MAX];  /* comma-separated, as selected */
};

/* What a TLS handshake showed (protocols/tlsfollow.c fills it from protocols/tls.c's
 * facts; strings sanitized). Held by the sessions that had a handshake only. */
struct mt_tls_info {
    char version[16];          /* negotiated, "TLSv1.2" */
    char client_versions[64];  /* offered */
    char cipher[64];
    char sni[MT_NAME_MAX];
    char subject[MT_NAME_MAX]; /* leaf certificate subject CN (TLS <= 1.2) */
    char issuer[MT_NAME_MAX];
    char sans[MT_TEXT_MAX];
    int64_t not_before, not_after;   /* epoch seconds, 0 if unknown */
    char alert[48];            /* "handshake_failure from the server", "" if none */
    char outcome[16];          /* "encrypted", "failed", "unknown" */
};

/* A DNS lookup (proto MT_PROTO_DNS rows only: protocols/dnswatch.c). */
struct mt_dns_info {
    char qname[MT_NAME_MAX];
    char qtype[16];
    char rcode[16];            /* "NOERROR", "NXDOMAIN"..., "" when no response */
    char answers[MT_TEXT_MAX];
    int64_t response_us;       /* -1 without a response */
};

struct mt_session {
    int64_t id;               /* database row id, 0 until stored */
    /* First, what every segment of an open connection touches: with 20,000 connections
     * open each session is cold in the cache, and each of its lines a segment reads is a
     * miss. The text fields below sat between them (5 lines, 1 now). */
    enum mt_proto proto;
    enum mt_direction direction;
    int64_t start_us, end_us;
    uint64_t bytes_c2s, bytes_s2c;
    bool tls;                      /* STARTTLS / STLS accepted, or implicit TLS */
    bool starttls_offered;         /* the server advertised STARTTLS / STLS */
    bool starttls_refused;         /* the client asked, the server refused (not stored:
                                      no starttls_unused finding then) */
    enum mt_status status;
    uint32_t flags;
    /* Transcript: lines "USEC DIR TEXT\n", DIR one of C (client), S (server),
     * I (note from mailtap). TEXT is sanitized and never holds a secret. The buffer is
     * NUL-terminated at transcript_len (or NULL when empty). */
    char *transcript;
    size_t transcript_len, transcript_cap;
    int transcript_lines;
    uint64_t transcript_dropped;
    struct mt_message *messages;
    size_t message_count, message_cap;
    uint64_t messages_dropped;
    struct mt_recipient *recipients;
    size_t recipient_count, recipient_cap;
    uint64_t recipients_dropped;

    char client_ip[MT_IP_MAX];
    char server_ip[MT_IP_MAX];
    uint16_t client_port, server_port;
    char banner[MT_TEXT_MAX];      /* greeting line */
    char server_name[MT_NAME_MAX]; /* first word of the greeting, when it is a host name */
    char helo[MT_NAME_MAX];
    char user[MT_NAME_MAX];
    int auth_attempts, auth_failures;

    char status_line[MT_TEXT_MAX]; /* the server line (or event) that decided status */
    int status_transcript_line;    /* index of that line in the transcript, -1 if none */
    enum mt_end end;
    int8_t reset_by;          /* end RESET: MT_CLIENT or MT_SERVER sent the RST; -1 unknown */
    int8_t closed_by;         /* end CLOSE: the side whose FIN came first; -1 unknown */
    int64_t input_end_us;     /* end EOF: when the input ended (end_us is the last bytes);
                                 0 unknown. How long a reply was awaited when it ended */
    int64_t input_gap_us;     /* end EOF: where the input last jumped a minute or more from
                                 one file to another (0 none): silence after it is unseen */

    struct mt_mailbox_stats stats;
    /* Allocated only by the sessions that have them (embedded, they cost every open
     * connection 2.3 KB). Read through session_tls() / session_dns(), which never return
     * NULL; write through session_tls_alloc() / session_dns_alloc(). */
    struct mt_tls_info *tls_info;  /* NULL: no TLS handshake seen */
    struct mt_dns_info *dns;       /* DNS rows only, else NULL */
};

struct mt_session *session_new(enum mt_proto proto);
void session_free(struct mt_session *session);

/* The session's TLS / DNS facts, or a shared all-empty record when it has none: never
 * NULL, so readers need not ask. Valid while the session lives. */
const struct mt_tls_info *session_tls(const struct mt_session *session);
const struct mt_dns_info *session_dns(const struct mt_session *session);
/* For writers: the session's record, allocated zeroed on first use. NULL when out of
 * memory: the writer then records nothing. */
struct mt_tls_info *session_tls_alloc(struct mt_session *session);
struct mt_dns_info *session_dns_alloc(struct mt_session *session);

/* Appends a transcript line (raw bytes: sanitized here) and returns its index, or -1
 * when the transcript is full (the line is then counted in transcript_dropped). */
int session_transcript_add(struct mt_session *session, int64_t ts_us, char dir,
                           const char *text, size_t len);
/* printf-style note or summary line, e.g. "[message 51118 bytes]". */
int session_transcript_addf(struct mt_session *session, int64_t ts_us, char dir,
                            const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Returns the new recipient/message, or NULL when the per-session cap is reached (the
 * drop is counted and flagged). */
struct mt_recipient *session_add_recipient(struct mt_session *session);
struct mt_message *session_add_message(struct mt_session *session);

/* Writing a heap text member (see struct mt_recipient): *field becomes the given text cut
 * to at most max - 1 bytes at a character boundary (max <= MT_STR_MAX), in a string of
 * exactly its size, or NULL when it is empty; the old string is freed. Out of memory:
 * *field becomes NULL (empty, like any detail a session could not keep) and false is
 * returned. session_text_set() sanitizes raw bytes (text_sanitize()), as every string
 * entering a session must; session_text_copy() takes text already sanitized (or made by
 * mailtap itself); session_text_setf() formats it (snprintf's cut: ASCII text only). */
bool session_text_set(char **field, size_t max, const char *raw, size_t len);
bool session_text_copy(char **field, size_t max, const char *text, size_t len);
bool session_text_setf(char **field, size_t max, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the deciding server line: status, sanitized text and transcript index. */
void session_decide(struct mt_session *session, enum mt_status status,
                    const char *line, size_t len, int transcript_line);

/* A raw line a decoder keeps until it decides something (a server reply, a Subject); it
 * is sanitized once, where it is stored. Most stay empty for the whole connection, so the
 * text is on the heap: NULL until the first non-empty line, grown in steps of
 * MT_LINE_BUF_ROUND (cut at MT_TEXT_MAX) and kept when the next line fits, so a line saved
 * on every reply settles at the longest one's size. Without memory for a longer line the
 * line is cut to the buffer there is (maybe empty): a shorter status line, never a crash.
 * One owner: copy with line_buf_copy(), never with =. Zeroed is empty. */
#define MT_LINE_BUF_ROUND 64
struct mt_line_buf {
    char *text;               /* not NUL-terminated; NULL: no buffer yet */
    uint16_t len, cap;        /* len <= cap <= MT_TEXT_MAX; cap 0 with text: a borrowed
                                 view, which set() replaces and free() leaves alone */
};

/* The line becomes text[0..len), cut to MT_TEXT_MAX bytes. text may not point into *b. */
void line_buf_set(struct mt_line_buf *b, const char *text, size_t len);
/* to becomes a copy of from's line; nothing when they are the same. */
void line_buf_copy(struct mt_line_buf *to, const struct mt_line_buf *from);
/* Frees the buffer; *b is empty again. */
void line_buf_free(struct mt_line_buf *b);

/* The line's bytes (len of them): never NULL, an empty line may have no buffer. */
static inline const char *line_buf_text(const struct mt_line_buf *b)
{
    return b->text ? b->text : "";
}

/* Packets of the session are missing from the capture (a sequence hole libnids never saw
 * filled, or kernel drops while it was open): flags MT_FLAG_CAPTURE_GAP, notes why in the
 * transcript, and turns a status that only says something did NOT happen (no greeting, no
 * end of transaction, no handshake, a reset before anything conclusive) into incomplete:
 * what was lost may hold it, so a capture loss is never reported as a server failure.
 * Statuses decided by a line the server was seen to send stay. */
void session_capture_lost(struct mt_session *session, int64_t ts_us, const char *why);
/* The status says only that something was not seen (see session_capture_lost). */
bool session_status_is_inconclusive(const struct mt_session *session);

const char *status_name(enum mt_status status);
enum mt_status status_from_name(const char *name);   /* MT_STATUS_UNKNOWN if none */
const char *proto_name(enum mt_proto proto);
int proto_from_name(const char *name);              /* -1 if none */
const char *end_name(enum mt_end end);
enum mt_end end_from_name(const char *name);        /* MT_END_EOF if none */
const char *direction_name(enum mt_direction direction);   /* "in" / "out" */
/* Name of flag bit `bit` (MT_FLAG_* == 1u << bit), e.g. "line_truncated"; NULL if none. */
const char *flag_name(unsigned bit);
/* How the connection ended, for a status line: "connection closed by the server" / "by the
 * client" / "connection closed" (who began it unknown), "connection reset by the client" /
 * "by the server" / "connection reset". */
const char *session_end_words(const struct mt_session *session);
/* A server's goodbye about a client that sat idle ("-ERR Disconnected for inactivity.",
 * "* BYE Autologout; idle for too long"): the client's doing, not the server ending a
 * session in use. Both POP3 and IMAP read it so. */
bool session_goodbye_for_inactivity(const char *line, size_t len);
/* True for statuses an admin treats as a failure (for --failed and colours). */
bool status_is_failure(enum mt_status status);
/* How long a silence must have lasted when the capture ended for an unanswered command to
 * be the server's silence rather than a cut: replies come in milliseconds to seconds (a
 * greet pause, a slow filter or mailbox), clients give up after minutes. */
#define MT_REPLY_WAIT_US (60LL * 1000000)
/* Whole seconds from since_us to the end of the input, when the session ended there
 * (MT_END_EOF with input_end_us known; or MT_END_TIMEOUT, input_end_us the moment the
 * idle connection was let go) and at least MT_REPLY_WAIT_US passed; else 0.
 * When the input jumped from one file to another across a minute without packets after
 * since_us (input_gap_us: captures of other times read together), the silence seen ends
 * where the earlier file did. */
int64_t session_silent_at_end_s(const struct mt_session *session, int64_t since_us);
/* How that silence ended, for the line saying so: "when the capture ended", or "when the
 * idle connection was let go" (end timeout: --idle-timeout of nothing from either side; a
 * server hung longer than that is still a server that never answered). */
const char *session_silence_end_words(const struct mt_session *session);
/* ", 23 s after the last bytes" (last_us: them) for a line saying the capture ended before
 * a reply; "" within the second. Into out (cap 48 is enough). */
void session_after_last_bytes(char *out, size_t cap, const struct mt_session *session,
                              int64_t last_us);
/* For a session decided no_response by such a silence: it was open, owed an answer, until
 * the silence seen ended (the end of the input, or of the earlier file), so it ends there,
 * not at its last bytes ("14:26:23.621 to 14:26:23.627" beside "no reply to PASS for 67 s"
 * read as a 6 ms session). Returns that time, for the note saying so. */
int64_t session_end_at_silence(struct mt_session *session, int64_t since_us);
/* The more severe of two statuses (see the order of enum mt_status). */
enum mt_status status_worse(enum mt_status a, enum mt_status b);

#endif
