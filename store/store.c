/* store.c — the SQLite store: schema, batched writes of decoded sessions, filtered reads.
 *
 * Schema version 1 (PRAGMA user_version = 1, PRAGMA application_id = 0x4d544150 "MTAP").
 * Created with PRAGMA auto_vacuum = INCREMENTAL, so that retention (store_prune()) can give
 * the pages of deleted sessions back to the file system.
 * Times are microseconds since the epoch, UTC. Text is sanitized UTF-8 (never a secret).
 * Counters are stored as 64-bit integers. Enums are stored as their names (session.c).
 *
 *   sessions — one row per TCP connection
 *     id INTEGER PRIMARY KEY
 *     proto TEXT ('smtp'|'pop3'|'imap'), direction TEXT ('in'|'out')
 *     client_ip TEXT, client_port INTEGER, server_ip TEXT, server_port INTEGER
 *     start_us INTEGER, end_us INTEGER, bytes_c2s INTEGER, bytes_s2c INTEGER
 *     banner, server_name, helo, user TEXT      greeting, its host name, HELO/EHLO, login
 *     tls INTEGER (0/1), auth_attempts INTEGER, auth_failures INTEGER
 *     status TEXT ('delivered', 'rcpt_rejected', ... see status_name())
 *     status_line TEXT            the server line (or event) that decided status
 *     status_transcript_line INT  index of that line in the transcript, -1 if none
 *     end_reason TEXT ('close'|'reset'|'timeout'|'evicted'|'eof'|'refused'|'unanswered')
 *     flags INTEGER               MT_FLAG_* bits (session.h)
 *     recipients_dropped, messages_dropped, transcript_lines, transcript_dropped INTEGER
 *     retr_count, retr_bytes, top_count, dele_count, stat_messages, stat_bytes,
 *     fetch_count, fetch_bytes, append_count, append_bytes, expunge_count,
 *     deleted_flagged, idled INTEGER; mailboxes TEXT      POP3/IMAP counters
 *     starttls_offered INTEGER    the server advertised STARTTLS / STLS
 *     tls_version, tls_client_versions, tls_cipher, tls_sni, tls_subject, tls_issuer,
 *     tls_sans, tls_alert, tls_outcome TEXT; tls_not_before, tls_not_after INTEGER (epoch s)
 *     dns_qname, dns_qtype, dns_rcode, dns_answers TEXT; dns_response_us INTEGER
 *                                 (proto 'dns' rows: one DNS lookup each)
 *     mail_from TEXT              first transaction's sender (denormalised for lists)
 *     rcpt_summary TEXT           first recipients, ", "-separated, ~200 chars, " +N" more
 *   messages — one row per MAIL FROM .. end-of-data transaction
 *     session_id → sessions(id) ON DELETE CASCADE, idx INTEGER (0-based), PRIMARY KEY both
 *     mail_from, header_from, header_to, subject, date, message_id TEXT, size INTEGER,
 *     reply_code INTEGER, reply TEXT, status TEXT, start_us INTEGER
 *   recipients — one row per RCPT TO
 *     session_id → sessions(id) ON DELETE CASCADE, idx INTEGER, PRIMARY KEY both
 *     message_idx INTEGER (messages.idx of its transaction, -1 if none), addr TEXT,
 *     code INTEGER (reply code, 0 if none seen), reply TEXT, accepted INTEGER (0/1)
 *   transcript — one row per session (one row per line costs as much as decoding)
 *     session_id INTEGER PRIMARY KEY → sessions(id) ON DELETE CASCADE
 *     text TEXT                   lines "USEC DIR TEXT\n", DIR = C client, S server, I note
 *   sensor_stats — capture statistics written periodically by `read`/`capture`
 *     ts_us INTEGER, packets, kernel_drops, interface_drops, sessions INTEGER, source TEXT,
 *     streams INTEGER             streams tracked at ts_us (a gauge; the rest are totals)
 *     health TEXT                 the capture-health warning in force ("" when all is well)
 *     run INTEGER                 the capture run (store handle) that wrote the row: its
 *                                 first row's rowid; running totals restart with each run
 *   capture_files — the files `read` has taken in (cli/readlog.c), made at any writable
 *     open if missing: identity TEXT PRIMARY KEY ("SIZE-DIGEST" of the first 64 KiB),
 *     path, size, read_at_us, complete (0 while the read goes on, or after it was killed)
 *   session_text — what `grep` searches, one row per session (see "The search index")
 *     id INTEGER PRIMARY KEY (= sessions.id), doc TEXT: user, helo, client_ip, server_ip,
 *     mail_from, rcpt_summary, status_line, tls_sni, tls_subject, tls_sans, tls_issuer, dns_qname,
 *     dns_answers, every subject, every recipient address not in rcpt_summary, one per
 *     line, ASCII letters lowered. Built by the view
 *     session_text_source(id, doc); deleted and rewritten with its session by triggers.
 *   session_search — FTS5 over session_text.doc (external content, trigram tokenizer,
 *     case-sensitive), rowid = session id
 *   search_pending — a row (since_us) while a bulk load builds session_search aside
 *     (store/search_build.h): searches scan session_text meanwhile
 *   Indexes: sessions(start_us), sessions(status, start_us), sessions(user, start_us),
 *     sessions(proto, start_us), sessions(proto, status, start_us), sessions(proto, user,
 *     start_us) (the orders, see SECONDARY_INDEXES), sessions(proto, direction, start_us),
 *     sessions(client_ip), sessions(mail_from), recipients(addr), messages(message_id),
 *     sensor_stats(ts_us).
 */
#include "store.h"
#include "search_build.h"

#include "protocols/text.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STORE_APPLICATION_ID 0x4d544150
#define RCPT_SUMMARY_MAX 200
#define ERROR_MAX 512

/* Columns and the struct members they hold: (column, kind, member). The same lists drive
 * the CREATE TABLE, the INSERT, the SELECT, binding and reading, so they cannot drift
 * apart. A session's TLS and DNS facts are structs of their own, held only by the sessions
 * that have them (session.h): their columns get lists of their own, of members of those
 * structs, bound and read at their place among the columns (SESSION_COLUMNS). */
#define SESSION_FIELDS(X) \
    X(proto, PROTO, proto) X(direction, DIRECTION, direction) \
    X(client_ip, TEXT, client_ip) X(client_port, U16, client_port) \
    X(server_ip, TEXT, server_ip) X(server_port, U16, server_port) \
    X(start_us, I64, start_us) X(end_us, I64, end_us) \
    X(bytes_c2s, U64, bytes_c2s) X(bytes_s2c, U64, bytes_s2c) X(banner, TEXT, banner) \
    X(server_name, TEXT, server_name) X(helo, TEXT, helo) X(user, TEXT, user) \
    X(tls, BOOL, tls) X(auth_attempts, INT, auth_attempts) \
    X(auth_failures, INT, auth_failures) X(status, STATUS, status) \
    X(status_line, TEXT, status_line) X(status_transcript_line, INT, status_transcript_line) \
    X(end_reason, END, end) X(flags, U32, flags) \
    X(recipients_dropped, U64, recipients_dropped) X(messages_dropped, U64, messages_dropped) \
    X(transcript_lines, INT, transcript_lines) X(transcript_dropped, U64, transcript_dropped) \
    X(retr_count, U64, stats.retr_count) X(retr_bytes, U64, stats.retr_bytes) \
    X(top_count, U64, stats.top_count) X(dele_count, U64, stats.dele_count) \
    X(stat_messages, U64, stats.stat_messages) X(stat_bytes, U64, stats.stat_bytes) \
    X(fetch_count, U64, stats.fetch_count) X(fetch_bytes, U64, stats.fetch_bytes) \
    X(append_count, U64, stats.append_count) X(append_bytes, U64, stats.append_bytes) \
    X(expunge_count, U64, stats.expunge_count) X(deleted_flagged, U64, stats.deleted_flagged) \
    X(idled, BOOL, stats.idled) X(mailboxes, TEXT, stats.mailboxes) \
    X(starttls_offered, BOOL, starttls_offered)
#define TLS_FIELDS(X) \
    X(tls_version, TEXT, version) X(tls_client_versions, TEXT, client_versions) \
    X(tls_cipher, TEXT, cipher) X(tls_sni, TEXT, sni) \
    X(tls_subject, TEXT, subject) X(tls_issuer, TEXT, issuer) \
    X(tls_sans, TEXT, sans) X(tls_not_before, I64, not_before) \
    X(tls_not_after, I64, not_after) X(tls_alert, TEXT, alert) \
    X(tls_outcome, TEXT, outcome)
#define DNS_FIELDS(X) \
    X(dns_qname, TEXT, qname) X(dns_qtype, TEXT, qtype) X(dns_rcode, TEXT, rcode) \
    X(dns_answers, TEXT, answers) X(dns_response_us, I64, response_us)
/* Computed on write (insert_session()), not read back: no member. */
#define DERIVED_FIELDS(X) X(mail_from, DERIVED, -) X(rcpt_summary, DERIVED, -)
/* Every column of sessions but id, in the order of the table (which predates the split). */
#define SESSION_COLUMNS(X) SESSION_FIELDS(X) TLS_FIELDS(X) DNS_FIELDS(X) DERIVED_FIELDS(X)
/* A message's and a recipient's text members are heap strings (STR: char *, NULL for "",
 * session.h): their columns carry a fourth value, the member's cap; 0 for the others. */
#define MESSAGE_FIELDS(X) \
    X(mail_from, STR, mail_from, MT_MSG_MAIL_FROM_MAX) \
    X(header_from, STR, header_from, MT_MSG_HEADER_FROM_MAX) \
    X(header_to, STR, header_to, MT_MSG_HEADER_TO_MAX) \
    X(subject, STR, subject, MT_MSG_SUBJECT_MAX) X(date, STR, date, MT_MSG_DATE_MAX) \
    X(message_id, STR, message_id, MT_MSG_MESSAGE_ID_MAX) X(size, U64, size, 0) \
    X(reply_code, INT, reply_code, 0) X(reply, STR, reply, MT_MSG_REPLY_MAX) \
    X(status, STATUS, status, 0) X(start_us, I64, start_us, 0)
#define RECIPIENT_FIELDS(X) \
    X(message_idx, INT, message, 0) X(addr, STR, addr, MT_RCPT_ADDR_MAX) X(code, INT, code, 0) \
    X(reply, STR, reply, MT_RCPT_REPLY_MAX) X(accepted, BOOL, accepted, 0)

enum field_kind {
    F_TEXT,    /* a char array of `size` bytes */
    F_STR,     /* a heap string (char *), at most `size` bytes with the NUL */
    F_I64, F_U64, F_INT, F_U16, F_U32, F_BOOL,
    F_PROTO, F_DIRECTION, F_STATUS, F_END,   /* enums, stored as their names */
};
struct field {
    enum field_kind kind;
    size_t offset, size;
};
#define FIELD(type, col, kind, member) \
    { F_##kind, offsetof(type, member), sizeof(((type *)0)->member) },
#define CHILD_FIELD(type, col, kind, member, max) \
    { F_##kind, offsetof(type, member), (max) ? (max) : sizeof(((type *)0)->member) },
#define SESSION_FIELD(col, kind, member) FIELD(struct mt_session, col, kind, member)
#define TLS_FIELD(col, kind, member) FIELD(struct mt_tls_info, col, kind, member)
#define DNS_FIELD(col, kind, member) FIELD(struct mt_dns_info, col, kind, member)
#define MESSAGE_FIELD(col, kind, member, max) \
    CHILD_FIELD(struct mt_message, col, kind, member, max)
#define RECIPIENT_FIELD(col, kind, member, max) \
    CHILD_FIELD(struct mt_recipient, col, kind, member, max)
static const struct field session_fields[] = { SESSION_FIELDS(SESSION_FIELD) };
static const struct field tls_fields[] = { TLS_FIELDS(TLS_FIELD) };
static const struct field dns_fields[] = { DNS_FIELDS(DNS_FIELD) };
static const struct field message_fields[] = { MESSAGE_FIELDS(MESSAGE_FIELD) };
static const struct field recipient_fields[] = { RECIPIENT_FIELDS(RECIPIENT_FIELD) };
#define FIELD_COUNT(a) ((int)(sizeof(a) / sizeof(a[0])))

#define COLUMN_ENUM(col, kind, member) SC_##col,
#define COLUMN_LIST(col, ...) #col ","
#define COLUMN_PARAM(col, ...) "?,"
enum session_column { SESSION_COLUMNS(COLUMN_ENUM) SC_ID };  /* id is selected last */

#define SESSION_SELECT "SELECT " SESSION_COLUMNS(COLUMN_LIST) "id FROM sessions"

/* Column types follow from the field kinds: names and text are TEXT, the rest INTEGER. */
#define TYPE_TEXT "TEXT"
#define TYPE_STR "TEXT"
#define TYPE_PROTO "TEXT NOT NULL"
#define TYPE_DIRECTION "TEXT NOT NULL"
#define TYPE_STATUS "TEXT NOT NULL"
#define TYPE_END "TEXT"
#define TYPE_DERIVED "TEXT"
#define TYPE_I64 "INTEGER"
#define TYPE_U64 "INTEGER"
#define TYPE_INT "INTEGER"
#define TYPE_U16 "INTEGER"
#define TYPE_U32 "INTEGER"
#define TYPE_BOOL "INTEGER"
#define COLUMN_DDL(col, kind, ...) #col " " TYPE_##kind ", "
#define CHILD_KEY "session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE, " \
    "idx INTEGER NOT NULL, "

/* The capture files `read` has taken in (store_capture_file_*): made at every writable
 * open if missing (databases made before it have none). */
#define CAPTURE_FILES_SQL \
    "CREATE TABLE IF NOT EXISTS capture_files (identity TEXT PRIMARY KEY, path TEXT," \
    " size INTEGER, read_at_us INTEGER, complete INTEGER);"
static const char schema_sql[] =
    "CREATE TABLE sessions (id INTEGER PRIMARY KEY, " SESSION_COLUMNS(COLUMN_DDL)
    " CHECK (direction IN ('in', 'out')));"
    "CREATE TABLE messages (" CHILD_KEY MESSAGE_FIELDS(COLUMN_DDL)
    "PRIMARY KEY (session_id, idx));"
    "CREATE TABLE recipients (" CHILD_KEY RECIPIENT_FIELDS(COLUMN_DDL)
    "PRIMARY KEY (session_id, idx));"
    "CREATE TABLE transcript (session_id INTEGER PRIMARY KEY REFERENCES sessions(id)"
    " ON DELETE CASCADE, text TEXT NOT NULL);"
    "CREATE TABLE sensor_stats (ts_us INTEGER, packets INTEGER, kernel_drops INTEGER,"
    " interface_drops INTEGER, sessions INTEGER, source TEXT, streams INTEGER, run INTEGER,"
    " health TEXT);"
    "CREATE INDEX sensor_stats_time ON sensor_stats(ts_us);" CAPTURE_FILES_SQL;

/* The search index. Each session's searchable fields are one document (session_text.doc),
 * built by the view session_text_source: one field per line, ASCII letters lowered
 * (SQLite's built-in lower() folds ASCII only). session_search indexes it by trigrams,
 * case-sensitively, and keeps no positions (detail=none: half the size of a positional
 * index and half the work to fill it; databases made before keep theirs, which answer the
 * same queries). A grep pattern of 3 characters or more, lowered the same way, becomes its
 * trigrams (grep_trigrams()): the documents holding all of them are a superset of the
 * matches, which LIKE's ASCII case-insensitive '%text%' on those documents alone narrows to
 * exactly what LIKE on each field would find (SEARCH_CHECK). Such a pattern never holds a
 * newline, so no match can span two fields; shorter patterns are LIKE-scanned on
 * session_text, a fraction of what sessions + messages + recipients hold. A recipient
 * address already inside rcpt_summary is left out: whatever matches in it matches in the
 * summary.
 * Writing: store_put_session() inserts the document after the children, and the batch's
 * documents enter session_search in one INSERT ... SELECT just before COMMIT (SQLite 3.40's
 * FTS5 flushes its pending terms at every statement savepoint: a row at a time it costs
 * four times as much). Deleting a session deletes its document (trigger), which removes it
 * from the index (external content: 'delete' with the old text); updating a searched field
 * rewrites the document the same way. */
#define TEXT_FIELD(expr) "ifnull(" expr ", '') || char(10) || "
/* store_prune()'s merge work takes levels of 2 segments (the default, 4, leaves deleted
 * entries in place longer). Automatic merges keep their default, 4, except during a bulk
 * load (SEARCH_BULK_SQL). Both persistent, in session_search_config; set again at every
 * writable open: for databases made before, and after a bulk load that was killed. */
#define SEARCH_CONFIG_SQL \
    "INSERT INTO session_search(session_search, rank) VALUES('usermerge', 2);" \
    "INSERT INTO session_search(session_search, rank) VALUES('automerge', 4);"
/* A bulk load leaves merging to FTS5's crisis merges (16 segments of a level at once, the
 * default crisismerge) instead of merging levels of 4 after every commit: the index is
 * rewritten fewer times, which took a quarter off the search index's cost in the writer
 * on the session-heavy benchmark. Searches read a few more segments; the same answers. */
#define SEARCH_BULK_SQL \
    "INSERT INTO session_search(session_search, rank) VALUES('automerge', 0);"
#define TEXT_REFRESH(id) "UPDATE session_text SET doc = (SELECT doc FROM session_text_source" \
    " WHERE id = " id ") WHERE id = " id ";"
/* Separate: search_document_check() makes it again for the newer fields. */
#define SESSIONS_TEXT_UPDATE_SQL \
    "CREATE TRIGGER sessions_text_update AFTER UPDATE OF user, helo, client_ip, server_ip," \
    " mail_from, rcpt_summary, status_line, tls_sni, tls_subject, tls_sans, tls_issuer," \
    " dns_qname, dns_answers ON sessions BEGIN " TEXT_REFRESH("new.id") " END;"
/* The document's definition: search_doc() builds the same text in C. */
#define SEARCH_VIEW_SQL \
    "CREATE VIEW session_text_source(id, doc) AS SELECT id, lower(" \
    TEXT_FIELD("user") TEXT_FIELD("helo") TEXT_FIELD("client_ip") TEXT_FIELD("server_ip") \
    TEXT_FIELD("mail_from") TEXT_FIELD("rcpt_summary") TEXT_FIELD("status_line") \
    TEXT_FIELD("tls_sni") TEXT_FIELD("tls_subject") TEXT_FIELD("tls_sans") \
    TEXT_FIELD("tls_issuer") TEXT_FIELD("dns_qname") TEXT_FIELD("dns_answers") \
    TEXT_FIELD("(SELECT group_concat(subject, char(10)) FROM messages" \
               " WHERE session_id = sessions.id)") \
    "ifnull((SELECT group_concat(addr, char(10)) FROM recipients WHERE session_id =" \
    " sessions.id AND instr(sessions.rcpt_summary, addr) = 0), '')) FROM sessions;"

#define SESSION_TEXT_DELETE_SQL \
    "CREATE TRIGGER session_text_delete AFTER DELETE ON session_text BEGIN" \
    " INSERT INTO session_search(session_search, rowid, doc) VALUES('delete', old.id, old.doc);" \
    " END;"
/* Databases whose documents predate the TLS and DNS fields (the view without tls_sni), or
 * the certificate's issuer (without tls_issuer: "which sessions show a certificate from
 * this CA" after a distrust):
 * the view and its trigger are made again and every document rewritten, once, at the
 * first writable open; the index is rebuilt from the documents in one pass. */
static const char search_document_upgrade_sql[] =
    "DROP VIEW session_text_source;" SEARCH_VIEW_SQL
    "DROP TRIGGER IF EXISTS sessions_text_update;" SESSIONS_TEXT_UPDATE_SQL
    "DROP TRIGGER session_text_delete;"
    "DELETE FROM session_text;"
    "INSERT INTO session_text(id, doc) SELECT id, doc FROM session_text_source;"
    SESSION_TEXT_DELETE_SQL
    "INSERT INTO session_search(session_search) VALUES('rebuild');";
/* A row while a bulk load builds the search index aside (store/search_build.h): documents
 * in session_text are not all in session_search yet. Searches then scan the documents
 * (QC_TEXT); the load's end, or the next writable open after a load that was killed,
 * fills the index and deletes the row. */
#define SEARCH_PENDING_SQL "CREATE TABLE IF NOT EXISTS search_pending (since_us INTEGER);"
static const char search_pending_rebuild_sql[] =
    "INSERT INTO session_search(session_search) VALUES('rebuild');"
    "DELETE FROM search_pending;";
static const char search_schema_sql[] =
    "CREATE TABLE session_text (id INTEGER PRIMARY KEY, doc TEXT NOT NULL);"
    SEARCH_INDEX_SQL ";" SEARCH_PENDING_SQL
    SEARCH_VIEW_SQL
    SEARCH_CONFIG_SQL
    SESSION_TEXT_DELETE_SQL
    "CREATE TRIGGER session_text_update AFTER UPDATE OF doc ON session_text BEGIN"
    " INSERT INTO session_search(session_search, rowid, doc) VALUES('delete', old.id, old.doc);"
    " INSERT INTO session_search(rowid, doc) VALUES(new.id, new.doc); END;"
    "CREATE TRIGGER sessions_text_delete AFTER DELETE ON sessions BEGIN"
    " DELETE FROM session_text WHERE id = old.id; END;"
    SESSIONS_TEXT_UPDATE_SQL
    "CREATE TRIGGER messages_text_update AFTER UPDATE OF subject ON messages BEGIN "
    TEXT_REFRESH("new.session_id") " END;"
    "CREATE TRIGGER recipients_text_update AFTER UPDATE OF addr ON recipients BEGIN "
    TEXT_REFRESH("new.session_id") " END;";

/* The indexes on sessions and their children: the orders of the lists (enum store_order)
 * give their key, then start time, then id (the rowid), for every session (the All tab)
 * and within one protocol (the other tabs; within one direction too, for time); a list
 * sorted by status or user reads the direction of each row instead ("+direction" in
 * query_statement()): two more indexes for that are not worth their writes. The rest serve
 * lookups (trace: addresses, Message-ID; filters: client, sender). All are made at every
 * writable open if missing: schema version 1 changed before its release (sessions_user was
 * on user alone), and a bulk load that was killed leaves them dropped (INDEX_DROP_SQL). */
#define SECONDARY_INDEXES(X) \
    X(sessions_start, "sessions(start_us)") \
    X(sessions_status, "sessions(status, start_us)") \
    X(sessions_proto, "sessions(proto, direction, start_us)") \
    X(sessions_client_ip, "sessions(client_ip)") \
    X(sessions_mail_from, "sessions(mail_from)") \
    X(recipients_addr, "recipients(addr)") \
    X(messages_message_id, "messages(message_id)") \
    X(sessions_user_time, "sessions(user, start_us)") \
    X(sessions_proto_time, "sessions(proto, start_us)") \
    X(sessions_proto_status, "sessions(proto, status, start_us)") \
    X(sessions_proto_user, "sessions(proto, user, start_us)")
#define INDEX_CREATE(name, on) "CREATE INDEX IF NOT EXISTS " #name " ON " on ";"
#define INDEX_DROP(name, on) "DROP INDEX IF EXISTS " #name ";"
static const char index_sql[] =
    "DROP INDEX IF EXISTS sessions_user;" SECONDARY_INDEXES(INDEX_CREATE);
#define INDEX_DROP_SQL SECONDARY_INDEXES(INDEX_DROP)
#define INDEX_NAME(name, on) "'" #name "',"
#define INDEX_COUNT(name, on) + 1
static const char index_count_sql[] = "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
    " AND name IN (" SECONDARY_INDEXES(INDEX_NAME) "'')";

/* Fills the search index of a database made before it existed (see search_check()). */
static const char search_fill_sql[] =
    "INSERT INTO session_text(id, doc) SELECT id, doc FROM session_text_source;"
    "INSERT INTO session_search(session_search) VALUES('rebuild');";

enum statement {
    ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
    ST_INSERT_SESSION, ST_INSERT_MESSAGE, ST_INSERT_RECIPIENT, ST_INSERT_TRANSCRIPT,
    ST_SELECT_SESSION, ST_SELECT_MESSAGES, ST_SELECT_RECIPIENTS, ST_SELECT_TRANSCRIPT,
    ST_INSERT_SENSOR,   /* not prepared read-only on a database without its newer columns */
    ST_LIVE_BYTES, ST_COUNT_SESSIONS, ST_PRUNE_OLDEST, ST_PRUNE_SESSIONS, ST_PRUNE_SENSOR,
    /* not prepared on a database without the search index: */
    ST_INSERT_TEXT, ST_INDEX_TEXT, ST_PRUNE_TEXT,
    ST_COUNT
};

static const char *const statement_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_INSERT_SESSION] = "INSERT INTO sessions(" SESSION_COLUMNS(COLUMN_LIST) "id) VALUES("
                          SESSION_COLUMNS(COLUMN_PARAM) "NULL)",
    [ST_INSERT_MESSAGE] = "INSERT INTO messages(" MESSAGE_FIELDS(COLUMN_LIST) "session_id, idx)"
                          " VALUES(" MESSAGE_FIELDS(COLUMN_PARAM) "?,?)",
    [ST_INSERT_RECIPIENT] = "INSERT INTO recipients(" RECIPIENT_FIELDS(COLUMN_LIST)
                            "session_id, idx) VALUES(" RECIPIENT_FIELDS(COLUMN_PARAM) "?,?)",
    [ST_INSERT_TRANSCRIPT] = "INSERT INTO transcript(session_id, text) VALUES(?,?)",
    [ST_SELECT_SESSION] = SESSION_SELECT " WHERE id = ?",
    [ST_SELECT_MESSAGES] = "SELECT " MESSAGE_FIELDS(COLUMN_LIST) "idx FROM messages"
                           " WHERE session_id = ? ORDER BY idx",
    [ST_SELECT_RECIPIENTS] = "SELECT " RECIPIENT_FIELDS(COLUMN_LIST) "idx FROM recipients"
                             " WHERE session_id = ? ORDER BY idx",
    [ST_SELECT_TRANSCRIPT] = "SELECT text FROM transcript WHERE session_id = ?",
    /* The first row of a store handle takes max(rowid) + 1 as its run: its own rowid, above
     * every run that still has a row (each run's rows have rowids >= its number). */
    [ST_INSERT_SENSOR] = "INSERT INTO sensor_stats(ts_us, packets, kernel_drops,"
                         " interface_drops, sessions, source, streams, run, health)"
                         " VALUES(?,?,?,?,?,?,?, ifnull(?, (SELECT ifnull(max(rowid), 0) + 1"
                         " FROM sensor_stats)), ?) RETURNING run",
    [ST_LIVE_BYTES] = "SELECT (p.page_count - f.freelist_count) * s.page_size, f.freelist_count"
                      " FROM pragma_page_count() p, pragma_freelist_count() f,"
                      " pragma_page_size() s",
    [ST_COUNT_SESSIONS] = "SELECT count(*) FROM sessions",
    /* The oldest sessions walk sessions_start (start_us, then the rowid) from its start.
     * ST_PRUNE_TEXT, then ST_PRUNE_SESSIONS with the same values delete the same ones; see
     * prune_chunk() for why in two statements. Messages, recipients and transcript go by
     * ON DELETE CASCADE (foreign keys are on in every store connection). */
    [ST_PRUNE_OLDEST] = "SELECT id, start_us FROM sessions ORDER BY start_us, id LIMIT 1",
    [ST_PRUNE_SESSIONS] = "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions"
                          " WHERE start_us < ?1 ORDER BY start_us, id LIMIT ?2)",
    [ST_PRUNE_SENSOR] = "DELETE FROM sensor_stats WHERE rowid IN (SELECT rowid FROM"
                        " sensor_stats WHERE ts_us < ? ORDER BY ts_us LIMIT ?)",
    [ST_INSERT_TEXT] = "INSERT INTO session_text(id, doc) VALUES(?,?)",
    [ST_INDEX_TEXT] = "INSERT INTO session_search(rowid, doc) SELECT id, doc FROM session_text"
                      " WHERE id >= ?",
    [ST_PRUNE_TEXT] = "DELETE FROM session_text WHERE id IN (SELECT id FROM sessions"
                      " WHERE start_us < ?1 ORDER BY start_us, id LIMIT ?2)",
};

/* store_query_sessions() clauses; a query's shape is the set it uses, and each shape's
 * statement is prepared once, on first use, into query[shape]. grep is one of four:
 * QC_MATCH (the index, then the documents), QC_MATCH_EXACT (the index alone: 3 characters),
 * QC_TEXT (a LIKE scan of the documents, for 1 or 2 characters) or QC_GREP (LIKE on each
 * field: a database without the index, or a control byte or invalid UTF-8 in the
 * pattern). */
enum query_clause {
    QC_PROTO, QC_DIRECTION, QC_STATUS, QC_FAILED, QC_GREP, QC_MATCH, QC_MATCH_EXACT, QC_TEXT,
    QC_SINCE,
    QC_UNTIL, QC_FLAGS,
    QC_OLDEST_FIRST, QC_COUNT_ONLY,
    QC_ORDER, QC_ORDER_HIGH,   /* two bits: enum store_order */
    QC_COUNT
};

#define GREP_LIKE(col) col " LIKE :grep ESCAPE '\\'"
/* The sessions whose document holds :grep: the index names the documents that hold each
 * of the pattern's trigrams in :match (detail=none keeps no positions, so they need not be
 * next to each other there), and LIKE on those documents keeps the exact matches. */
#define SEARCH_CANDIDATES "SELECT rowid FROM session_search WHERE session_search MATCH :match"
#define SEARCH_CHECK "doc LIKE :grep ESCAPE '\\'"
static const char *const clause_sql[QC_COUNT] = {
    [QC_PROTO] = "proto = :proto",
    [QC_DIRECTION] = "direction = :direction",
    [QC_STATUS] = "status = :status",
    [QC_FAILED] = NULL,   /* built from status_is_failure() */
    [QC_GREP] = "(" GREP_LIKE("user") " OR " GREP_LIKE("helo") " OR " GREP_LIKE("client_ip")
        " OR " GREP_LIKE("server_ip") " OR " GREP_LIKE("mail_from") " OR "
        GREP_LIKE("rcpt_summary") " OR " GREP_LIKE("status_line") " OR " GREP_LIKE("tls_sni")
        " OR " GREP_LIKE("tls_subject") " OR " GREP_LIKE("tls_sans") " OR "
        GREP_LIKE("tls_issuer") " OR "
        GREP_LIKE("dns_qname") " OR " GREP_LIKE("dns_answers")
        " OR EXISTS (SELECT 1 FROM messages m WHERE m.session_id = sessions.id AND "
        GREP_LIKE("m.subject") ")"
        " OR EXISTS (SELECT 1 FROM recipients r WHERE r.session_id = sessions.id AND "
        GREP_LIKE("r.addr") "))",
    /* The list of candidate ids is built once. Counting looks each one up; a list reads an
     * order's index and checks each row against it ("+id": not a rowid lookup), then its
     * document, so it stops at the LIMIT and never sorts, however many sessions match: the
     * whole index at worst. */
    [QC_MATCH] = "id IN (" SEARCH_CANDIDATES ") AND (SELECT " SEARCH_CHECK " FROM session_text"
                 " WHERE session_text.id = sessions.id)",
    [QC_MATCH_EXACT] = "id IN (" SEARCH_CANDIDATES ")",   /* one trigram: nothing to check */
    [QC_TEXT] = "id IN (SELECT id FROM session_text WHERE doc LIKE :grep ESCAPE '\\')",
    [QC_SINCE] = "start_us >= :since",
    [QC_UNTIL] = "start_us < :until",
    [QC_FLAGS] = "(flags & :flags) != 0",
    [QC_OLDEST_FIRST] = NULL,
    [QC_COUNT_ONLY] = NULL,
};

/* ORDER BY per enum store_order; "%1$s" is ASC or DESC. Each matches an index's columns
 * (its rowid last), so SQLite walks the index, either way, and stops at the LIMIT. */
static const char *const order_sql[STORE_ORDER_COUNT] = {
    [STORE_ORDER_TIME] = " ORDER BY start_us %1$s, id %1$s",
    [STORE_ORDER_STATUS] = " ORDER BY status %1$s, start_us %1$s, id %1$s",
    [STORE_ORDER_USER] = " ORDER BY user %1$s, start_us %1$s, id %1$s",
};

struct mt_store {
    sqlite3 *db;
    sqlite3_stmt *stmt[ST_COUNT];
    sqlite3_stmt *query[1u << QC_COUNT];
    bool writable;
    bool search;              /* the database has the search index (session_search) */
    bool indexes_deferred;    /* a bulk load dropped SECONDARY_INDEXES: made again at its end */
    bool bulk_journal;        /* ... and writes with a rollback journal until then (WAL after) */
    int new_page_size;        /* a file this handle creates gets pages of this size (0: 4 KiB) */
    bool search_bulk;         /* a bulk load turned the search index's automerge off */
    uint64_t sessions_committed;   /* by this handle: what a summary can say was stored */
    bool sensor_columns;      /* sensor_stats has streams and run (see sensor_check()) */
    int64_t run;              /* this handle's capture run (sensor_stats.run); 0: no row yet */
    bool pruning_size;        /* store_prune() went past the size limit and has not yet
                                 brought the live size down to its target */
    int64_t unindexed;        /* first session of the open batch not yet in session_search */
    struct search_build *search_builder;   /* a bulk load's search index, built aside */
    char *doc;                /* search_doc()'s buffer, reused */
    size_t doc_cap;
    int bind_rc;              /* first failed bind since the last step */
    bool in_batch;
    int pending;              /* sessions in the open batch */
    int64_t batch_start_ms;
    int batch_max, batch_ms;
    char error[ERROR_MAX];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Records a failure of SQLite result rc while `doing` something; returns our code. */
/* SQLite writes its -wal and -shm files beside the database: a database file this user
 * may write in a directory it may not (a sensor's -Z user) is read-only all the same. */
static bool directory_blocks_writing(const char *path)
{
    char dir[4096];
    if (!path || !path[0] || strlen(path) >= sizeof dir || access(path, W_OK) != 0)
        return false;
    strcpy(dir, path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else
        slash[slash == dir] = '\0';   /* "/x.db" → "/" */
    return access(dir, W_OK | X_OK) != 0;
}

static int store_fail(struct mt_store *store, int rc, const char *doing)
{
    /* errmsg describes rc only when rc came from the last SQLite call */
    bool current = store->db && (sqlite3_errcode(store->db) & 0xff) == (rc & 0xff);
    const char *detail = current ? sqlite3_errmsg(store->db) : sqlite3_errstr(rc);
    int code = STORE_ERROR;
    const char *what = "database error";
    switch (rc & 0xff) {
    case SQLITE_FULL:
        what = "database write failed: disk full (or database size limit reached)";
        code = STORE_FULL;
        break;
    case SQLITE_IOERR: what = "database I/O error"; code = STORE_IOERR; break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:   /* a sensor holds DB.lock; two reads meet here */
        what = "database is locked by another process (a read or capture into it still "
               "running? try again once it has finished)";
        code = STORE_BUSY;
        break;
    case SQLITE_READONLY: what = "database is read-only"; code = STORE_READONLY; break;
    case SQLITE_NOMEM: what = "out of memory"; code = STORE_NOMEM; break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: what = "database is corrupt or not a database"; break;
    }
    const char *path = store->db ? sqlite3_db_filename(store->db, "main") : NULL;
    if ((rc & 0xff) == SQLITE_NOTADB && path && path[0])   /* which file: -d may be a typo */
        snprintf(store->error, sizeof store->error, "%s is not a mailtap database (or is corrupt):"
                 " %s while %s", path, detail, doing);
    else if ((rc & 0xff) == SQLITE_READONLY && directory_blocks_writing(path))
        snprintf(store->error, sizeof store->error, "database is read-only while %s: the"
                 " directory of %s is not writable by this user, and SQLite creates its -wal"
                 " and -shm files there (%s)", doing, path, detail);
    else
        snprintf(store->error, sizeof store->error, "%s while %s: %s", what, doing, detail);
    return code;
}

/* Steps a statement that returns no rows, then resets it. Returns the SQLite result. */
static int step_reset(struct mt_store *store, sqlite3_stmt *st)
{
    int rc = store->bind_rc ? store->bind_rc : sqlite3_step(st);
    store->bind_rc = SQLITE_OK;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? SQLITE_DONE : rc;
}

static void note_bind(struct mt_store *store, int rc)
{
    if (rc != SQLITE_OK && store->bind_rc == SQLITE_OK)
        store->bind_rc = rc;
}

static void bind_text(struct mt_store *store, sqlite3_stmt *st, int i, const char *s, size_t n)
{
    note_bind(store, sqlite3_bind_text(st, i, s, (int)n, SQLITE_STATIC));
}

static void bind_str(struct mt_store *store, sqlite3_stmt *st, int i, const char *s)
{
    bind_text(store, st, i, s, strlen(s));
}

static void bind_int(struct mt_store *store, sqlite3_stmt *st, int i, int64_t v)
{
    note_bind(store, sqlite3_bind_int64(st, i, v));
}

/* Copies a text column into dst (capacity cap), cut at a UTF-8 character boundary. */
static void column_copy(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
    const char *text = (const char *)sqlite3_column_text(st, col);
    size_t len = text ? text_utf8_cut(text, (size_t)sqlite3_column_bytes(st, col), cap - 1) : 0;
    if (len)
        memcpy(dst, text, len);
    dst[len] = '\0';
}

/* Copies a text column into the heap string *field, cut to at most max - 1 bytes as
 * column_copy() cuts. False when out of memory (*field is then NULL). */
static bool column_str(char **field, size_t max, sqlite3_stmt *st, int col)
{
    const char *text = (const char *)sqlite3_column_text(st, col);
    size_t len = text ? (size_t)sqlite3_column_bytes(st, col) : 0;
    return session_text_copy(field, max, text ? text : "", len);
}

/* Binds the members of `record` described by fields[0..n) to the parameters of columns
 * first..first + n) (parameter numbers count from 1, columns from 0). */
static void bind_fields(struct mt_store *store, sqlite3_stmt *st, int first,
                        const struct field *fields, int n, const void *record)
{
    for (int i = 0; i < n; i++) {
        int param = first + i + 1;
        const void *p = (const char *)record + fields[i].offset;
        const char *name = NULL;
        int64_t v = 0;
        switch (fields[i].kind) {
        case F_TEXT: bind_text(store, st, param, p, strnlen(p, fields[i].size)); continue;
        case F_STR: bind_str(store, st, param, mt_str(*(char *const *)p)); continue;
        case F_PROTO: name = proto_name(*(const enum mt_proto *)p); break;
        case F_DIRECTION: name = direction_name(*(const enum mt_direction *)p); break;
        case F_STATUS: name = status_name(*(const enum mt_status *)p); break;
        case F_END: name = end_name(*(const enum mt_end *)p); break;
        case F_I64: v = *(const int64_t *)p; break;
        case F_U64: v = (int64_t)*(const uint64_t *)p; break;
        case F_INT: v = *(const int *)p; break;
        case F_U16: v = *(const uint16_t *)p; break;
        case F_U32: v = *(const uint32_t *)p; break;
        case F_BOOL: v = *(const bool *)p; break;
        }
        if (name)
            bind_str(store, st, param, name);
        else
            bind_int(store, st, param, v);
    }
}

/* Reads columns first..first + n) of the current row into the members of `record`. False
 * when a heap string could not be allocated (the record's strings are the caller's to free). */
static bool read_fields(sqlite3_stmt *st, int first, const struct field *fields, int n,
                        void *record)
{
    bool ok = true;
    for (int i = 0; i < n; i++) {
        int col = first + i;
        void *p = (char *)record + fields[i].offset;
        const char *text = (const char *)sqlite3_column_text(st, col);
        int64_t v = sqlite3_column_int64(st, col);
        int proto;
        if (!text)
            text = "";
        switch (fields[i].kind) {
        case F_TEXT: column_copy(p, fields[i].size, st, col); break;
        case F_STR: ok &= column_str(p, fields[i].size, st, col); break;
        case F_I64: *(int64_t *)p = v; break;
        case F_U64: *(uint64_t *)p = (uint64_t)v; break;
        case F_INT: *(int *)p = (int)v; break;
        case F_U16: *(uint16_t *)p = (uint16_t)v; break;
        case F_U32: *(uint32_t *)p = (uint32_t)v; break;
        case F_BOOL: *(bool *)p = v != 0; break;
        case F_PROTO:
            proto = proto_from_name(text);
            *(enum mt_proto *)p = proto >= 0 ? (enum mt_proto)proto : MT_PROTO_SMTP;
            break;
        case F_DIRECTION:
            *(enum mt_direction *)p = strcmp(text, "out") == 0 ? MT_OUTBOUND : MT_INBOUND;
            break;
        case F_STATUS: *(enum mt_status *)p = status_from_name(text); break;
        case F_END: *(enum mt_end *)p = end_from_name(text); break;
        }
    }
    return ok;
}

/* ---- opening ---------------------------------------------------------------------- */

static int pragma_int(struct mt_store *store, const char *sql, int64_t *value)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(store->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        *value = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Finds sensor_stats' columns streams, run and health, which schema 1 gained before its release.
 * Writable, adds them (old rows read as 0: run 0 is "unknown") and the index on ts_us;
 * read-only, the store reads 0 for them and cannot write statistics. SQLite result. */
static int sensor_check(struct mt_store *store, bool writable)
{
    static const char *const added[] = { "streams", "run", "health" };
    static const char *const types[] = { "INTEGER", "INTEGER", "TEXT" };
    int64_t found = 0;
    int rc = SQLITE_OK;
    char sql[128];
    store->sensor_columns = true;
    for (size_t i = 0; rc == SQLITE_OK && i < sizeof added / sizeof added[0]; i++) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM pragma_table_info('sensor_stats')"
                 " WHERE name = '%s'", added[i]);
        if ((rc = pragma_int(store, sql, &found)) != SQLITE_OK || found)
            continue;
        if (!writable) {
            store->sensor_columns = false;
            continue;
        }
        snprintf(sql, sizeof sql, "ALTER TABLE sensor_stats ADD COLUMN %s %s", added[i], types[i]);
        rc = sqlite3_exec(store->db, sql, NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK && writable)
        rc = sqlite3_exec(store->db, "CREATE INDEX IF NOT EXISTS sensor_stats_time"
                          " ON sensor_stats(ts_us);" CAPTURE_FILES_SQL, NULL, NULL, NULL);
    return rc;
}

/* Finds the search index. Writable, brings a database of the first, unreleased schema 1 up
 * to date: the order indexes, sensor_stats' newer columns, and the search index (filled)
 * if it lacks it. Read-only, a database without the search index is searched by LIKE.
 * Runs inside schema_check()'s transaction (commits it when writable). A database created
 * before auto_vacuum was set keeps auto_vacuum = NONE (changing it takes a VACUUM, far too
 * long at open): pruning frees its pages for reuse but cannot shrink the file. */
/* Rewrites the search documents of a database made before they held the TLS and DNS
 * fields (search_document_upgrade_sql). SQLite result code. */
static int search_document_check(struct mt_store *store)
{
    int64_t current = 0;
    int rc = pragma_int(store, "SELECT count(*) FROM sqlite_master WHERE type = 'view' AND"
                        " name = 'session_text_source' AND sql LIKE '%tls_issuer%'", &current);
    if (rc != SQLITE_OK || current)
        return rc;
    return sqlite3_exec(store->db, search_document_upgrade_sql, NULL, NULL, NULL);
}

/* Fills the search index left unfinished by a bulk load that was killed (a row in
 * search_pending), from the documents. SQLite result code. */
static int search_pending_check(struct mt_store *store)
{
    int64_t pending = 0;
    int rc = sqlite3_exec(store->db, SEARCH_PENDING_SQL, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = pragma_int(store, "SELECT count(*) FROM search_pending", &pending);
    if (rc == SQLITE_OK && pending)
        rc = sqlite3_exec(store->db, search_pending_rebuild_sql, NULL, NULL, NULL);
    return rc;
}

static int search_check(struct mt_store *store, bool writable)
{
    int64_t found = 0;
    int rc = pragma_int(store, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                        " AND name = 'session_text'", &found);
    if (rc == SQLITE_OK)
        rc = sensor_check(store, writable);
    if (rc == SQLITE_OK && writable) {
        rc = sqlite3_exec(store->db, index_sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK && found)
            rc = sqlite3_exec(store->db, SEARCH_CONFIG_SQL, NULL, NULL, NULL);
        if (rc == SQLITE_OK && found)
            rc = search_document_check(store);
        if (rc == SQLITE_OK && found)
            rc = search_pending_check(store);
        if (rc == SQLITE_OK && !found)
            rc = sqlite3_exec(store->db, search_schema_sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK && !found)
            rc = sqlite3_exec(store->db, search_fill_sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(store->db, "COMMIT", NULL, NULL, NULL);
        found = rc == SQLITE_OK;
    }
    if (rc != SQLITE_OK)
        return store_fail(store, rc, "updating the schema");
    store->search = found != 0;
    return STORE_OK;
}

/* Checks (and, writable, creates) the schema. Runs under BEGIN IMMEDIATE when writable so
 * that two processes creating the same new database do not race. */
static int schema_check(struct mt_store *store, const char *path, bool writable)
{
    int64_t version = 0, app_id = 0, tables = 0;
    int rc = writable ? sqlite3_exec(store->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) : SQLITE_OK;
    if (rc != SQLITE_OK)
        return store_fail(store, rc, "opening");
    if ((rc = pragma_int(store, "PRAGMA user_version", &version)) != SQLITE_OK ||
        (rc = pragma_int(store, "PRAGMA application_id", &app_id)) != SQLITE_OK ||
        (rc = pragma_int(store, "SELECT count(*) FROM sqlite_master", &tables)) != SQLITE_OK) {
        rc = store_fail(store, rc, "reading the schema");
        goto end;
    }
    rc = STORE_ERROR;
    if ((app_id != 0 && app_id != STORE_APPLICATION_ID) || (version == 0 && tables > 0)) {
        snprintf(store->error, sizeof store->error, "%s is not a mailtap database", path);
    } else if (version > STORE_SCHEMA_VERSION) {
        snprintf(store->error, sizeof store->error,
                 "%s has schema version %lld, newer than this mailtap supports (%d): "
                 "upgrade mailtap", path, (long long)version, STORE_SCHEMA_VERSION);
    } else if (version != 0 && version != STORE_SCHEMA_VERSION) {
        snprintf(store->error, sizeof store->error, "%s has unsupported schema version %lld",
                 path, (long long)version);
    } else if (version == 0 && !writable) {
        snprintf(store->error, sizeof store->error, "%s holds no mailtap data yet", path);
    } else if (version == 0) {
        char sql[80];
        snprintf(sql, sizeof sql, "PRAGMA user_version=%d; PRAGMA application_id=%d; COMMIT",
                 STORE_SCHEMA_VERSION, STORE_APPLICATION_ID);
        rc = sqlite3_exec(store->db, schema_sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(store->db, index_sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(store->db, search_schema_sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(store->db, sql, NULL, NULL, NULL);
        rc = rc == SQLITE_OK ? STORE_OK : store_fail(store, rc, "creating the schema");
        store->search = store->sensor_columns = rc == STORE_OK;
    } else {
        rc = search_check(store, writable);
    }
end:
    if (!sqlite3_get_autocommit(store->db))
        sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Waiting for another writer (capture workers share the database): look again every
 * 200 µs, not with SQLite's own back-off (1, 2, 5 ... 100 ms), which almost never lands in
 * the short gap between one writer's commit and its next batch: a worker waited seconds
 * and stopped reading its ring. Gives up after STORE_BUSY_TIMEOUT_MS. */
static int busy_poll(void *ctx, int attempts)
{
    (void)ctx;
    if ((int64_t)attempts * 200 >= (int64_t)STORE_BUSY_TIMEOUT_MS * 1000)
        return 0;
    usleep(200);
    return 1;
}

static int store_configure(struct mt_store *store, const char *path, bool writable)
{
    int rc;
    sqlite3_extended_result_codes(store->db, 1);
    sqlite3_busy_handler(store->db, busy_poll, NULL);
    store->writable = writable;
    if (writable) {
        sqlite3_stmt *st = NULL;
        int64_t pages = 0;
        /* A new (empty) file: incremental auto-vacuum lets store_prune() shrink it. It must
         * be set before anything writes page 1, which switching to WAL does, and outside
         * a transaction. On an existing database SQLite would ignore it anyway. */
        rc = pragma_int(store, "PRAGMA page_count", &pages);
        if (rc == SQLITE_OK && pages == 0 && store->new_page_size > 0) {
            char sql[48];   /* likewise: the page size of a file with pages does not change */
            snprintf(sql, sizeof sql, "PRAGMA page_size=%d", store->new_page_size);
            rc = sqlite3_exec(store->db, sql, NULL, NULL, NULL);
        }
        if (rc == SQLITE_OK && pages == 0)
            rc = sqlite3_exec(store->db, "PRAGMA auto_vacuum=INCREMENTAL", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            return store_fail(store, rc, "setting up auto-vacuum");
        rc = sqlite3_prepare_v2(store->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            /* ":memory:" databases cannot use WAL and need not */
            const char *mode = (const char *)sqlite3_column_text(st, 0);
            rc = mode && (strcmp(mode, "wal") == 0 || strcmp(mode, "memory") == 0)
                 ? SQLITE_OK : SQLITE_ERROR;
        }
        sqlite3_finalize(st);
        if (rc == SQLITE_OK)
            /* A 16 MiB page cache holds the hot index pages of a long capture (the 2 MiB
             * default made every insert touch the disk cache); sorts stay in memory. The
             * WAL file is cut back to 16 MiB when it restarts after growing past that (a
             * long read holds checkpoints back): it would otherwise keep its largest size
             * for good, outside the database's size limit. */
            rc = sqlite3_exec(store->db, "PRAGMA synchronous=NORMAL; PRAGMA cache_size=-16384;"
                              " PRAGMA temp_store=MEMORY; PRAGMA journal_size_limit=16777216",
                              NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            return store_fail(store, rc, "setting up WAL journaling");
    }
    rc = sqlite3_exec(store->db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return store_fail(store, rc, "opening");
    if ((rc = schema_check(store, path, writable)) != STORE_OK)
        return rc;
    for (int i = 0; i < (store->search ? ST_COUNT : ST_INSERT_TEXT); i++) {
        if (i == ST_INSERT_SENSOR && !store->sensor_columns)
            continue;   /* read-only: store_put_sensor_stats() says so */
        rc = sqlite3_prepare_v3(store->db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                &store->stmt[i], NULL);
        if (rc != SQLITE_OK)
            return store_fail(store, rc, "preparing statements");
    }
    return STORE_OK;
}

static void store_free(struct mt_store *store)
{
    search_build_free(store->search_builder);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(store->stmt[i]);
    for (size_t i = 0; i < sizeof store->query / sizeof store->query[0]; i++)
        sqlite3_finalize(store->query[i]);
    sqlite3_close(store->db);
    free(store->doc);
    free(store);
}

/* Closes the connection and whatever it prepared, leaving the handle to open again. */
static void store_disconnect(struct mt_store *store)
{
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(store->stmt[i]);
        store->stmt[i] = NULL;
    }
    for (size_t i = 0; i < sizeof store->query / sizeof store->query[0]; i++) {
        sqlite3_finalize(store->query[i]);
        store->query[i] = NULL;
    }
    sqlite3_close(store->db);
    store->db = NULL;
}

/* A reader without write access to the database's directory cannot make the -shm file
 * that WAL mode needs ("attempt to write a readonly database"): it reads the file as it
 * is instead (SQLite's immutable URI: no locks, no WAL; what a writer still holds in its
 * -wal is not seen). SQLite result code. */
static int open_immutable(struct mt_store *store, const char *path)
{
    return store_sqlite_open_immutable(path, &store->db);
}

/* A rollback journal with its header written (SQLite's magic in its first 8 bytes), or
 * one this user may not read, is hot: a bulk load (store_set_bulk_load()) was killed while
 * its commit wrote pages into the file, which holds half a transaction until a writer
 * rolls it back. A journal whose header is still zero is a transaction that never reached
 * the file. */
static bool hot_journal_beside(const char *path)
{
    static const unsigned char magic[8] = { 0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7 };
    unsigned char head[8];
    char journal[4200];
    if ((size_t)snprintf(journal, sizeof journal, "%s-journal", path) >= sizeof journal)
        return false;
    FILE *f = fopen(journal, "rb");
    struct stat st;
    if (!f)   /* one this user may not read (0600, another's): it cannot be told, so it is */
        return errno != ENOENT && stat(journal, &st) == 0 && st.st_size > 0;
    bool hot = fread(head, 1, sizeof head, f) == sizeof head && memcmp(head, magic, 8) == 0;
    fclose(f);
    return hot;
}

/* A read-only connection cannot roll back a hot journal ("attempt to write a readonly
 * database"); a writable one does at its first read. Done for a reader that may write the
 * file and its directory: what the rollback restores is what was committed. True when the
 * journal is gone. */
static bool roll_back_hot_journal(const char *path)
{
    if (!hot_journal_beside(path) || access(path, W_OK) != 0 || directory_blocks_writing(path))
        return false;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK)
        sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
    sqlite3_close(db);
    return !hot_journal_beside(path);
}

int store_sqlite_open_immutable(const char *path, sqlite3 **db)
{
    if (hot_journal_beside(path))
        return SQLITE_READONLY_ROLLBACK;   /* immutable would read the half transaction */
    size_t len = strlen(path);
    char *uri = malloc(len * 3 + 32);
    if (!uri)
        return SQLITE_NOMEM;
    size_t n = (size_t)sprintf(uri, "file:");
    for (size_t i = 0; i < len; i++)
        n += (size_t)(strchr("%?#", path[i]) ? sprintf(uri + n, "%%%02X", (unsigned char)path[i])
                                             : sprintf(uri + n, "%c", path[i]));
    strcpy(uri + n, "?immutable=1");
    int rc = sqlite3_open_v2(uri, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
    free(uri);
    return rc;
}

static struct mt_store *open_store(const char *path, bool writable, int new_page_size,
                                   char *err, size_t errlen);

struct mt_store *store_open(const char *path, bool writable, char *err, size_t errlen)
{
    return open_store(path, writable, 0, err, errlen);
}

struct mt_store *store_open_for_load(const char *path, char *err, size_t errlen)
{
    return open_store(path, true, STORE_BULK_PAGE_SIZE, err, errlen);
}

static struct mt_store *open_store(const char *path, bool writable, int new_page_size,
                                   char *err, size_t errlen)
{
    bool special = path[0] == '\0' || strcmp(path, ":memory:") == 0;
    struct mt_store *store = calloc(1, sizeof *store);
    struct stat sb;
    int rc;
    if (!store) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    store->new_page_size = new_page_size;
    store->batch_max = STORE_BATCH_SESSIONS;
    store->batch_ms = STORE_BATCH_MS;
    if (!special && writable) {
        /* Created here so that it is 0600 whatever the umask; SQLite gives the -wal and
         * -shm files the database's own permissions. */
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            int error = errno;
            bool exists = stat(path, &sb) == 0;
            snprintf(store->error, sizeof store->error, "cannot %s database %s: %s",
                     exists ? "write to the" : "create", path, strerror(error));
            goto fail;
        }
        close(fd);
    } else if (!special && stat(path, &sb) != 0) {
        snprintf(store->error, sizeof store->error, "cannot open database %s: %s", path,
                 strerror(errno));
        goto fail;
    }
    if (!special && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {   /* SQLite: "disk I/O error" */
        snprintf(store->error, sizeof store->error, "cannot open database %s: %s", path,
                 strerror(EISDIR));
        goto fail;
    }
    /* NOMUTEX: one thread at a time uses a connection (store/writer.c's store lock), so
     * SQLite's own per-call locking of it is only cost. */
    rc = sqlite3_open_v2(path, &store->db,
                         (writable ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                                   : SQLITE_OPEN_READONLY) | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(store->error, sizeof store->error, "cannot open database %s: %s", path,
                 store->db ? sqlite3_errmsg(store->db) : sqlite3_errstr(rc));
        goto fail;
    }
    int result = store_configure(store, path, writable);
    if (result == STORE_READONLY && !writable && !special && roll_back_hot_journal(path)) {
        store_disconnect(store);   /* the journal is gone: as it was opened, again */
        rc = sqlite3_open_v2(path, &store->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
        result = rc == SQLITE_OK ? store_configure(store, path, writable)
                                 : store_fail(store, rc, "opening");
    }
    if (result == STORE_READONLY && !writable && !special) {
        store_disconnect(store);
        if ((rc = open_immutable(store, path)) == SQLITE_READONLY_ROLLBACK) {
            snprintf(store->error, sizeof store->error, "cannot open database %s: a read into it "
                     "was killed in the middle of a commit (%s-journal): any mailtap command run "
                     "by a user who may write the file and its directory rolls that back", path,
                     path);
            goto fail;
        } else if (rc != SQLITE_OK) {
            snprintf(store->error, sizeof store->error, "cannot open database %s: %s", path,
                     store->db ? sqlite3_errmsg(store->db) : sqlite3_errstr(rc));
            goto fail;
        }
        result = store_configure(store, path, writable);
    }
    if (result != STORE_OK)
        goto fail;
    return store;
fail:
    snprintf(err, errlen, "%s", store->error);
    store_free(store);
    return NULL;
}

/* ---- batches -------------------------------------------------------------------- */

static int index_texts(struct mt_store *store);

/* Rolls back the open batch after a failure whose message is already in store->error. */
static void batch_abort(struct mt_store *store)
{
    if (!sqlite3_get_autocommit(store->db))
        step_reset(store, store->stmt[ST_ROLLBACK]);
    store->unindexed = 0;
    if (store->search_builder)   /* it was given documents that are no longer there */
        search_build_abandon(store->search_builder);
    /* The rolled-back rows may include this run's first sensor_stats row, whose rowid
     * another writer could now take as its run: the next row starts a new run. */
    store->run = 0;
    if (store->pending > 0) {
        size_t len = strlen(store->error);
        snprintf(store->error + len, sizeof store->error - len,
                 " (%d uncommitted session%s rolled back)", store->pending,
                 store->pending == 1 ? "" : "s");
    }
    store->in_batch = false;
    store->pending = 0;
}

int store_flush(struct mt_store *store)
{
    if (!store->in_batch)
        return STORE_OK;
    int rc = index_texts(store);
    if (rc == SQLITE_DONE)
        rc = step_reset(store, store->stmt[ST_COMMIT]);
    if (rc != SQLITE_DONE) {
        rc = store_fail(store, rc, "committing");
        batch_abort(store);
        return rc;
    }
    store->sessions_committed += (uint64_t)store->pending;
    store->in_batch = false;
    store->pending = 0;
    return STORE_OK;
}

void store_global_init(void)
{
    /* Memory statistics (sqlite3_memory_used()), which mailtap never reads, take a global
     * mutex at every allocation SQLite makes. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

bool store_indexes_missing(struct mt_store *store)
{
    int64_t found = 0;
    return pragma_int(store, index_count_sql, &found) == SQLITE_OK &&
           found < 0 SECONDARY_INDEXES(INDEX_COUNT);
}

uint64_t store_sessions_committed(const struct mt_store *store)
{
    return store->sessions_committed;
}

int store_tick(struct mt_store *store)
{
    if (store->in_batch && now_ms() - store->batch_start_ms >= store->batch_ms)
        return store_flush(store);
    return STORE_OK;
}

void store_set_batch(struct mt_store *store, int max_sessions, int max_ms)
{
    store->batch_max = max_sessions > 0 ? max_sessions : 1;
    store->batch_ms = max_ms > 0 ? max_ms : 0;
}

/* Sets the journal mode and tells whether it is now `mode` (SQLite keeps WAL while another
 * connection has the database open in WAL mode, and says so by the mode it returns). */
static bool journal_mode_set(struct mt_store *store, const char *mode)
{
    char sql[48];
    sqlite3_stmt *st = NULL;
    bool set = false;
    snprintf(sql, sizeof sql, "PRAGMA journal_mode=%s", mode);
    if (sqlite3_prepare_v2(store->db, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        const char *now = (const char *)sqlite3_column_text(st, 0);
        set = now && strcasecmp(now, mode) == 0;
    }
    sqlite3_finalize(st);
    return set;
}

/* A bulk load into an empty database nobody reads (see store_set_bulk_load()): a rollback
 * journal until store_finish_bulk_load(). A measured gain, not needed for what is right:
 * when the mode cannot change (a reader has the file open in WAL mode), the load is as
 * before. */
static void enter_bulk_journal(struct mt_store *store)
{
    if (!journal_mode_set(store, "delete"))
        return;
    store->bulk_journal = true;
}

/* The search index built aside during a bulk load into an empty database (see
 * store/search_build.h), when the database's index has the definition the builder makes
 * and a file another connection can open; NULL otherwise (the writer indexes each batch,
 * as outside a bulk load), also when the builder cannot start. */
static struct search_build *start_search_aside(struct mt_store *store)
{
    const char *file = sqlite3_db_filename(store->db, "main");
    sqlite3_stmt *st = NULL;
    bool same = false;
    char err[256];
    if (!store->search || !file || !file[0])
        return NULL;
    if (sqlite3_prepare_v2(store->db, "SELECT 1 FROM sqlite_master WHERE name = 'session_search'"
                           " AND sql = ?", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, SEARCH_INDEX_SQL, -1, SQLITE_STATIC);
        same = sqlite3_step(st) == SQLITE_ROW;
    }
    sqlite3_finalize(st);
    return same ? search_build_start(err, sizeof err) : NULL;
}

/* Puts the search index built aside into the database, or when that cannot be (the
 * builder failed, a batch was rolled back, another writer touched the index), rebuilds it
 * from the documents; either way the search_pending row goes in the same transaction. */
static int finish_search_aside(struct mt_store *store)
{
    char why[320];
    struct search_build *builder = store->search_builder;
    store->search_builder = NULL;
    int copied = search_build_copy(builder, sqlite3_db_filename(store->db, "main"), why,
                                   sizeof why);
    search_build_free(builder);
    if (copied == 0)
        return STORE_OK;
    int rc = sqlite3_exec(store->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(store->db, search_pending_rebuild_sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(store->db, "COMMIT", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        return STORE_OK;
    rc = store_fail(store, rc, "building the search index (the next writable open does)");
    if (!sqlite3_get_autocommit(store->db))
        sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int store_set_bulk_load(struct mt_store *store, bool defer_indexes)
{
    char sql[80];
    int64_t rows = 1, page_size = 0;
    store->batch_max = STORE_BULK_BATCH_SESSIONS;
    int rc = pragma_int(store, "PRAGMA page_size", &page_size);
    snprintf(sql, sizeof sql, "PRAGMA wal_autocheckpoint=%lld",
             (long long)(STORE_BULK_WAL_BYTES / (page_size > 0 ? page_size : 4096)));
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(store->db, sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK && store->search && !store->in_batch) {
        rc = sqlite3_exec(store->db, SEARCH_BULK_SQL, NULL, NULL, NULL);
        store->search_bulk = rc == SQLITE_OK;
    }
    if (rc == SQLITE_OK && defer_indexes && !store->in_batch) {
        /* Only into an empty database: made again, they would be sorted from every row. */
        struct search_build *builder = NULL;
        rc = sqlite3_exec(store->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = pragma_int(store, "SELECT count(*) FROM (SELECT 1 FROM sessions LIMIT 1)",
                            &rows);
        if (rc == SQLITE_OK && rows == 0)
            rc = sqlite3_exec(store->db, INDEX_DROP_SQL, NULL, NULL, NULL);
        if (rc == SQLITE_OK && rows == 0 && (builder = start_search_aside(store))) {
            snprintf(sql, sizeof sql, "INSERT INTO search_pending VALUES(%lld)",
                     (long long)time(NULL) * 1000000);
            rc = sqlite3_exec(store->db, sql, NULL, NULL, NULL);
        }
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(store->db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK && !sqlite3_get_autocommit(store->db))
            sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
        store->indexes_deferred = rc == SQLITE_OK && rows == 0;
        if (store->indexes_deferred)
            enter_bulk_journal(store);
        if (store->indexes_deferred && builder)
            store->search_builder = builder;
        else
            search_build_free(builder);
    }
    return rc == SQLITE_OK ? STORE_OK : store_fail(store, rc, "setting up a bulk load");
}

/* Back to the write-ahead log after a bulk load in a rollback journal. A reader holding
 * the file keeps the rollback journal: the next writable open sets WAL again. */
static void leave_bulk_journal(struct mt_store *store)
{
    if (!store->bulk_journal || !sqlite3_get_autocommit(store->db))
        return;
    store->bulk_journal = false;
    journal_mode_set(store, "wal");
}

int store_finish_bulk_load(struct mt_store *store)
{
    int rc = store_flush(store);
    if (store->search_builder)   /* it finishes beside the indexes' build */
        search_build_end_input(store->search_builder);
    if (rc == STORE_OK && store->search_bulk) {
        store->search_bulk = false;
        if ((rc = sqlite3_exec(store->db, SEARCH_CONFIG_SQL, NULL, NULL, NULL)) != SQLITE_OK)
            rc = store_fail(store, rc, "ending a bulk load");
    }
    if (rc == STORE_OK && store->indexes_deferred) {
        store->indexes_deferred = false;
        int sql_rc = sqlite3_exec(store->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (sql_rc == SQLITE_OK)
            sql_rc = sqlite3_exec(store->db, index_sql, NULL, NULL, NULL);
        if (sql_rc == SQLITE_OK)
            sql_rc = sqlite3_exec(store->db, "COMMIT", NULL, NULL, NULL);
        if (sql_rc != SQLITE_OK) {
            rc = store_fail(store, sql_rc, "making the indexes");
            if (!sqlite3_get_autocommit(store->db))
                sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
        }
    }
    if (store->search_builder) {
        int search_rc = finish_search_aside(store);
        rc = rc == STORE_OK ? search_rc : rc;
    }
    leave_bulk_journal(store);
    return rc;
}

int store_limit_size(struct mt_store *store, int64_t max_bytes)
{
    int64_t page_size = 0, pages = 0;
    char sql[64];
    int rc = pragma_int(store, "PRAGMA page_size", &page_size);
    if (rc == SQLITE_OK && page_size > 0) {
        snprintf(sql, sizeof sql, "PRAGMA max_page_count=%lld",
                 (long long)(max_bytes / page_size > 0 ? max_bytes / page_size : 1));
        rc = pragma_int(store, sql, &pages);
    }
    return rc == SQLITE_OK ? STORE_OK : store_fail(store, rc, "setting the size limit");
}

int store_close(struct mt_store *store)
{
    if (!store)
        return STORE_OK;
    int rc = store_finish_bulk_load(store);
    store_free(store);
    return rc;
}

int store_capture_file_state(struct mt_store *store, const char *identity,
                             int64_t *read_at_us, bool *complete)
{
    sqlite3_stmt *st;
    *read_at_us = 0;
    *complete = false;
    int rc = sqlite3_prepare_v2(store->db, "SELECT read_at_us, complete FROM capture_files"
                                " WHERE identity = ?", -1, &st, NULL);
    if (rc != SQLITE_OK && !store->writable)
        return 0;   /* a database older than the record, opened read-only */
    if (rc != SQLITE_OK)
        return store_fail(store, rc, "looking up a capture file"), -1;
    sqlite3_bind_text(st, 1, identity, -1, SQLITE_STATIC);
    int found = 0;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *read_at_us = sqlite3_column_int64(st, 0);
        *complete = sqlite3_column_int(st, 1) != 0;
        found = 1;
    } else if (rc != SQLITE_DONE) {
        found = -1;
        store_fail(store, rc, "looking up a capture file");
    }
    sqlite3_finalize(st);
    return found;
}

int64_t store_capture_file_smaller(struct mt_store *store, const char *path, int64_t size,
                                   char *identity, size_t cap)
{
    sqlite3_stmt *st;
    int64_t before = 0;
    identity[0] = '\0';
    if (sqlite3_prepare_v2(store->db, "SELECT identity, size FROM capture_files WHERE path = ?"
                           " AND size < ? ORDER BY size DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
        return 0;   /* a database older than the record, opened read-only */
    sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, size);
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(st, 0);
        snprintf(identity, cap, "%s", text ? text : "");
        before = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return before;
}

int store_capture_file_forget(struct mt_store *store, const char *identity)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(store->db, "DELETE FROM capture_files WHERE identity = ?", -1,
                                &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, identity, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
    }
    return rc == SQLITE_DONE ? STORE_OK : store_fail(store, rc, "forgetting a capture file");
}

int store_capture_file_mark(struct mt_store *store, const char *identity, const char *path,
                            int64_t size, int64_t read_at_us, bool complete)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(store->db, "INSERT OR REPLACE INTO capture_files(identity, path,"
                                " size, read_at_us, complete) VALUES(?,?,?,?,?)", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, identity, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, size);
        sqlite3_bind_int64(st, 4, read_at_us);
        sqlite3_bind_int(st, 5, complete);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
    }
    return rc == SQLITE_DONE ? STORE_OK : store_fail(store, rc, "recording a capture file");
}

const char *store_error(const struct mt_store *store)
{
    return store->error;
}

/* ---- writing -------------------------------------------------------------------- */

/* The first recipients, ", "-separated, within RCPT_SUMMARY_MAX bytes (a first address
 * longer than that is cut), then " +N" for the rest. out holds RCPT_SUMMARY_MAX + 32. */
static void rcpt_summary(const struct mt_session *s, char *out)
{
    size_t len = 0, shown = 0;
    uint64_t total = s->recipient_count + s->recipients_dropped;
    for (; shown < s->recipient_count; shown++) {
        const char *addr = mt_str(s->recipients[shown].addr);
        size_t alen = strlen(addr), sep = shown ? 2 : 0;
        if (shown > 0 && len + sep + alen > RCPT_SUMMARY_MAX)
            break;
        alen = text_utf8_cut(addr, alen, RCPT_SUMMARY_MAX);
        memcpy(out + len, ", ", sep);
        memcpy(out + len + sep, addr, alen);
        len += sep + alen;
    }
    out[len] = '\0';
    if (total > shown)
        snprintf(out + len, 32, " +%llu", (unsigned long long)(total - shown));
}

/* Appends n bytes and a separator (if sep) to the document being built. */
static void doc_add(char *doc, size_t *len, const char *text, size_t n, bool sep)
{
    memcpy(doc + *len, text, n);
    *len += n;
    if (sep)
        doc[(*len)++] = '\n';
}

/* Builds in store->doc the search document that session_text_source gives the session's
 * rows once inserted, byte for byte: the fields as bound (mail_from and rcpt_summary as
 * insert_session() binds them), every subject in message order, the recipients that
 * instr() does not find in the summary (an empty address is "found"), ASCII letters
 * lowered. The view stays the definition (it rewrites a document when a field changes);
 * running it per session cost the writer 17% of a session-heavy read. test_store.c and
 * the pcap suite compare the two. Returns the length, or (size_t)-1 when out of memory. */
static size_t search_doc(struct mt_store *store, const struct mt_session *s,
                         const char *mail_from, const char *summary)
{
#define DOC_FIELD(array) { array, strnlen(array, sizeof array) }   /* as bind_fields() */
    static const struct mt_tls_info no_tls;
    static const struct mt_dns_info no_dns;
    const struct mt_tls_info *tls = session_tls(s) ? session_tls(s) : &no_tls;
    const struct mt_dns_info *dns = session_dns(s) ? session_dns(s) : &no_dns;
    const struct { const char *text; size_t len; } fields[] = {
        DOC_FIELD(s->user), DOC_FIELD(s->helo), DOC_FIELD(s->client_ip),
        DOC_FIELD(s->server_ip), { mail_from, strlen(mail_from) }, { summary, strlen(summary) },
        DOC_FIELD(s->status_line), DOC_FIELD(tls->sni), DOC_FIELD(tls->subject),
        DOC_FIELD(tls->sans), DOC_FIELD(tls->issuer), DOC_FIELD(dns->qname),
        DOC_FIELD(dns->answers),
    };
#undef DOC_FIELD
    size_t field_count = sizeof fields / sizeof fields[0], need = 1;
    for (size_t i = 0; i < field_count; i++)
        need += fields[i].len + 1;
    for (size_t i = 0; i < s->message_count; i++)
        need += strlen(mt_str(s->messages[i].subject)) + 1;
    for (size_t i = 0; i < s->recipient_count; i++)
        need += strlen(mt_str(s->recipients[i].addr)) + 1;
    if (need > store->doc_cap) {
        char *grown = realloc(store->doc, need);
        if (!grown)
            return (size_t)-1;
        store->doc = grown;
        store->doc_cap = need;
    }
    char *doc = store->doc;
    size_t len = 0;
    for (size_t i = 0; i < field_count; i++)
        doc_add(doc, &len, fields[i].text, fields[i].len, true);
    for (size_t i = 0; i < s->message_count; i++) {
        const char *subject = mt_str(s->messages[i].subject);
        doc_add(doc, &len, subject, strlen(subject), i + 1 < s->message_count);
    }
    doc[len++] = '\n';
    bool first = true;
    for (size_t i = 0; i < s->recipient_count; i++) {
        const char *addr = mt_str(s->recipients[i].addr);
        if (strstr(summary, addr))
            continue;
        if (!first)
            doc[len++] = '\n';
        doc_add(doc, &len, addr, strlen(addr), false);
        first = false;
    }
    for (size_t i = 0; i < len; i++)
        if (doc[i] >= 'A' && doc[i] <= 'Z')
            doc[i] = (char)(doc[i] - 'A' + 'a');
    return len;
}

/* Writes the search document of session s, stored as id; it is indexed when the batch
 * commits (index_texts()). SQLite result code. */
static int insert_text(struct mt_store *store, int64_t id, const struct mt_session *s,
                       const char *mail_from, const char *summary)
{
    sqlite3_stmt *st = store->stmt[ST_INSERT_TEXT];
    size_t len = search_doc(store, s, mail_from, summary);
    if (len == (size_t)-1)
        return SQLITE_NOMEM;
    bind_int(store, st, 1, id);
    bind_text(store, st, 2, store->doc, len);
    int rc = step_reset(store, st);
    if (rc == SQLITE_DONE && store->search_builder)
        search_build_add(store->search_builder, id, store->doc, len);   /* failed: rebuilt */
    else if (rc == SQLITE_DONE && !store->unindexed)
        store->unindexed = id;
    return rc;
}

/* Adds the open batch's documents to session_search, in one statement. SQLite result. */
static int index_texts(struct mt_store *store)
{
    sqlite3_stmt *st = store->stmt[ST_INDEX_TEXT];
    if (!store->unindexed)
        return SQLITE_DONE;
    bind_int(store, st, 1, store->unindexed);
    int rc = step_reset(store, st);
    if (rc == SQLITE_DONE)
        store->unindexed = 0;
    return rc;
}

/* Inserts one session and its children inside the open batch. SQLite result code. */
static int insert_session(struct mt_store *store, struct mt_session *s)
{
    char summary[RCPT_SUMMARY_MAX + 32];
    sqlite3_stmt *st = store->stmt[ST_INSERT_SESSION];
    int64_t id;
    int rc;
    const char *mail_from = s->message_count ? mt_str(s->messages[0].mail_from) : "";
    rcpt_summary(s, summary);
    bind_fields(store, st, 0, session_fields, FIELD_COUNT(session_fields), s);
    bind_fields(store, st, SC_tls_version, tls_fields, FIELD_COUNT(tls_fields), session_tls(s));
    bind_fields(store, st, SC_dns_qname, dns_fields, FIELD_COUNT(dns_fields), session_dns(s));
    bind_str(store, st, SC_mail_from + 1, mail_from);
    bind_str(store, st, SC_rcpt_summary + 1, summary);
    if ((rc = step_reset(store, st)) != SQLITE_DONE)
        goto end;
    id = sqlite3_last_insert_rowid(store->db);
    st = store->stmt[ST_INSERT_MESSAGE];
    for (size_t i = 0; i < s->message_count; i++) {
        bind_fields(store, st, 0, message_fields, FIELD_COUNT(message_fields),
                    &s->messages[i]);
        bind_int(store, st, FIELD_COUNT(message_fields) + 1, id);
        bind_int(store, st, FIELD_COUNT(message_fields) + 2, (int64_t)i);
        if ((rc = step_reset(store, st)) != SQLITE_DONE)
            goto end;
    }
    st = store->stmt[ST_INSERT_RECIPIENT];
    for (size_t i = 0; i < s->recipient_count; i++) {
        bind_fields(store, st, 0, recipient_fields, FIELD_COUNT(recipient_fields),
                    &s->recipients[i]);
        bind_int(store, st, FIELD_COUNT(recipient_fields) + 1, id);
        bind_int(store, st, FIELD_COUNT(recipient_fields) + 2, (int64_t)i);
        if ((rc = step_reset(store, st)) != SQLITE_DONE)
            goto end;
    }
    if (s->transcript_len > 0) {
        st = store->stmt[ST_INSERT_TRANSCRIPT];
        bind_int(store, st, 1, id);
        bind_text(store, st, 2, s->transcript, s->transcript_len);
        if ((rc = step_reset(store, st)) != SQLITE_DONE)
            goto end;
    }
    if (store->search && (rc = insert_text(store, id, s, mail_from, summary)) != SQLITE_DONE)
        goto end;
    s->id = id;
end:
    return rc;
}

int store_put_session(struct mt_store *store, struct mt_session *session)
{
    int rc;
    if (!store->in_batch) {
        if ((rc = step_reset(store, store->stmt[ST_BEGIN])) != SQLITE_DONE)
            return store_fail(store, rc, "starting a transaction");
        store->in_batch = true;
        store->batch_start_ms = now_ms();
    }
    if ((rc = insert_session(store, session)) != SQLITE_DONE) {
        rc = store_fail(store, rc, "writing a session");
        batch_abort(store);
        return rc;
    }
    store->pending++;
    if (store->pending >= store->batch_max)
        return store_flush(store);
    return store_tick(store);
}

int store_checkpoint(struct mt_store *store)
{
    int result = store_flush(store);
    if (result != STORE_OK)
        return result;
    int frames = 0, copied = 0;
    int rc = sqlite3_wal_checkpoint_v2(store->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &frames, &copied);
    if (rc != SQLITE_OK)
        return store_fail(store, rc, "checkpointing the write-ahead log");
    return STORE_OK;
}

int store_put_sensor_stats(struct mt_store *store, const struct store_sensor_stats *stats)
{
    sqlite3_stmt *st = store->stmt[ST_INSERT_SENSOR];
    if (!st)   /* read-only, on a database without the newer columns */
        return store_fail(store, SQLITE_READONLY, "writing capture statistics");
    sqlite3_bind_int64(st, 1, stats->ts_us);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)stats->packets);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)stats->kernel_drops);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)stats->interface_drops);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)stats->sessions);
    sqlite3_bind_text(st, 6, stats->source ? stats->source : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)stats->streams);
    if (store->run)
        sqlite3_bind_int64(st, 8, store->run);
    else
        sqlite3_bind_null(st, 8);   /* the first row: the store picks the run */
    sqlite3_bind_text(st, 9, stats->health ? stats->health : "", -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        store->run = sqlite3_column_int64(st, 0);   /* batch_abort() forgets it */
        rc = SQLITE_DONE;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return store_fail(store, rc, "writing capture statistics");
    return STORE_OK;
}

int store_query_sensor_stats(struct mt_store *store, int64_t since_us, int max_rows,
                             store_sensor_stats_fn cb, void *ctx)
{
    /* Newest first along sensor_stats_time (ts_us, then the rowid: the later row of two
     * at the same time first). Prepared per call: `stats` reads a few rows, rarely. */
    char sql[256];
    sqlite3_stmt *st = NULL;
    int rc, count = 0;
    snprintf(sql, sizeof sql, "SELECT ts_us, packets, kernel_drops, interface_drops, sessions,"
             " source, %s FROM sensor_stats WHERE ts_us >= ? ORDER BY ts_us DESC, rowid DESC"
             " LIMIT ?", store->sensor_columns ? "streams, run, health" : "0, 0, ''");
    if ((rc = sqlite3_prepare_v2(store->db, sql, -1, &st, NULL)) != SQLITE_OK)
        return store_fail(store, rc, "reading capture statistics");
    sqlite3_bind_int64(st, 1, since_us > 0 ? since_us : INT64_MIN);
    sqlite3_bind_int64(st, 2, max_rows > 0 ? max_rows : -1);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *source = (const char *)sqlite3_column_text(st, 5);
        struct store_sensor_stats row = {
            .ts_us = sqlite3_column_int64(st, 0),
            .packets = (uint64_t)sqlite3_column_int64(st, 1),
            .kernel_drops = (uint64_t)sqlite3_column_int64(st, 2),
            .interface_drops = (uint64_t)sqlite3_column_int64(st, 3),
            .sessions = (uint64_t)sqlite3_column_int64(st, 4),
            .source = source ? source : "",
            .streams = (uint64_t)sqlite3_column_int64(st, 6),
            .run = sqlite3_column_int64(st, 7),
            .health = (const char *)sqlite3_column_text(st, 8),
        };
        count++;
        if (cb(ctx, &row) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    int result = rc == SQLITE_DONE ? count : store_fail(store, rc, "reading capture statistics");
    sqlite3_finalize(st);
    return result;
}

double store_sensor_sessions_per_minute(const struct store_sensor_stats *newer,
                                        const struct store_sensor_stats *older)
{
    if (newer->run == 0 || newer->run != older->run ||
        newer->ts_us - older->ts_us < STORE_RATE_MIN_SPAN_US || newer->sessions < older->sessions)
        return -1;
    return (double)(newer->sessions - older->sessions) * 60e6 /
           (double)(newer->ts_us - older->ts_us);
}

/* ---- retention ------------------------------------------------------------------ */

/* Merge work on the search index, STORE_PRUNE_MERGE_PAGES pages at most: a positive count
 * goes on with a merge in progress or merges a level of usermerge (2) segments or more.
 * Never a negative count nor 'optimize': each adds a level to the index's structure, and
 * SQLite 3.40 (no FTS5_MAX_LEVEL cap yet) reports an index of more than 2000 levels as
 * corrupt; run at every pruning call, a negative merge reached 1964 levels in a test. */
static const char search_merge_sql[] = "INSERT INTO session_search(session_search, rank)"
    " VALUES('merge', " TEXT_XSTR(STORE_PRUNE_MERGE_PAGES) ")";

/* The live size (pages not on the freelist, in bytes) and the freelist's page count, as
 * the open transaction sees them. SQLite result code. */
static int live_size(struct mt_store *store, int64_t *bytes, int64_t *free_pages)
{
    sqlite3_stmt *st = store->stmt[ST_LIVE_BYTES];
    int rc = sqlite3_step(st);
    *bytes = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    *free_pages = rc == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? SQLITE_OK : rc;
}

int store_live_bytes(struct mt_store *store, int64_t *bytes)
{
    int64_t free_pages;
    int rc = live_size(store, bytes, &free_pages);
    return rc == SQLITE_OK ? STORE_OK : store_fail(store, rc, "measuring the database");
}

/* The oldest session (by start time, then id): SQLITE_ROW with *start_us, or SQLITE_DONE
 * when there is none. */
static int oldest_session(struct mt_store *store, int64_t *start_us)
{
    sqlite3_stmt *st = store->stmt[ST_PRUNE_OLDEST];
    int rc = sqlite3_step(st);
    *start_us = rc == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
    sqlite3_reset(st);
    return rc;
}

/* Deletes the n oldest sessions that start before `before`; *got = how many. The search
 * documents go first, in one statement: their index entries are then removed in one
 * sweep in id order, one FTS5 segment of tombstones for the chunk. Through the sessions'
 * trigger, FTS5 would flush its pending terms at each row's foreign-key savepoint: one
 * segment per session, and measured 0.7 ms a session one statement each, 20 ms a session
 * in one statement, against 0.2 ms this way. SQLite result code. */
static int prune_chunk(struct mt_store *store, int64_t before, int64_t n, int64_t *got)
{
    int rc = SQLITE_DONE;
    *got = 0;
    for (int i = store->search ? 0 : 1; i < 2 && rc == SQLITE_DONE; i++) {
        sqlite3_stmt *st = store->stmt[i == 0 ? ST_PRUNE_TEXT : ST_PRUNE_SESSIONS];
        bind_int(store, st, 1, before);
        bind_int(store, st, 2, n);
        rc = step_reset(store, st);
    }
    if (rc == SQLITE_DONE)
        *got = sqlite3_changes(store->db);   /* the sessions' rows alone */
    return rc;
}

/* One call's work inside its transaction: sessions by age, then by size in chunks sized
 * from the average session (the live size is measured after each, so it stops near the
 * target), then sensor_stats rows, then a bounded incremental vacuum. SQLite result. */
static int prune_batch(struct mt_store *store, int64_t older_than_us, int64_t max_db_bytes,
                       int max_rows, long *deleted)
{
    int64_t live, free_before, free_after, sessions = 0, got, start_us;
    /* max_db_bytes / 100 first: no overflow near INT64_MAX */
    int64_t target = max_db_bytes / 100 * STORE_PRUNE_TARGET_PCT;
    bool sized;
    int rc = live_size(store, &live, &free_before);
    if (rc != SQLITE_OK)
        return rc;
    if (max_db_bytes <= 0 || live <= target)
        store->pruning_size = false;
    else if (live > max_db_bytes)
        store->pruning_size = true;   /* between target and limit: as the last call left it */
    sized = store->pruning_size;
    /* FTS5 deletes by writing tombstones; the entries they hide stay until a merge takes in
     * both, which for the oldest entries (in the largest segment) the automatic merges do
     * seldom: until then the index holds deleted sessions' entries, and pruning for size
     * deletes more sessions to make up for them. Merge work first, then sessions only if
     * the space it gave back is not enough. Measured on a steady capture with large search
     * documents: 1319 sessions kept on average (74 at worst) of ~2600 that fit without
     * it, 1957 (956) with 256 pages a call, for 33 ms a call instead of 23. */
    if (sized && store->search) {
        if ((rc = sqlite3_exec(store->db, search_merge_sql, NULL, NULL, NULL)) != SQLITE_OK ||
            (rc = live_size(store, &live, &free_after)) != SQLITE_OK)
            return rc;
        store->pruning_size = live > target;
    }
    if (older_than_us > 0) {
        if ((rc = prune_chunk(store, older_than_us, max_rows, &got)) != SQLITE_DONE)
            return rc;
        *deleted += (long)got;
        if (store->pruning_size && got > 0) {
            if ((rc = live_size(store, &live, &free_after)) != SQLITE_OK)
                return rc;
            store->pruning_size = live > target;
        }
    }
    /* by age only: the merge work after the deleting, so the index does not grow without
     * bound with entries of sessions long gone */
    if (!sized && *deleted > 0 && store->search &&
        (rc = sqlite3_exec(store->db, search_merge_sql, NULL, NULL, NULL)) != SQLITE_OK)
        return rc;
    if (store->pruning_size) {
        sqlite3_stmt *st = store->stmt[ST_COUNT_SESSIONS];
        rc = sqlite3_step(st);
        sessions = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_reset(st);
        if (rc != SQLITE_ROW)
            return rc;
    }
    /* The newest session stays (at most sessions - 1 go): a limit that even it, with the
     * schema's own pages, exceeds would otherwise empty the database at every call. The
     * average overstates a session (it carries the schema, statistics, free index space),
     * so a chunk undershoots rather than overshoots; the next chunk measures again. */
    while (store->pruning_size && *deleted < max_rows && sessions > 1) {
        int64_t average = live / sessions > 0 ? live / sessions : 1;
        int64_t n = (live - target + average - 1) / average;
        if (n > max_rows - *deleted)
            n = max_rows - *deleted;
        if (n > sessions - 1)
            n = sessions - 1;
        if ((rc = prune_chunk(store, INT64_MAX, n, &got)) != SQLITE_DONE)
            return rc;
        *deleted += (long)got;
        sessions -= got;
        if ((rc = live_size(store, &live, &free_after)) != SQLITE_OK)
            return rc;
        store->pruning_size = live > target;
        if (got == 0)
            break;
    }
    /* Statistics older than the age limit; for size, also those older than every session
     * kept (they would be all that is left to delete, and describe no data any more). */
    int64_t cut = older_than_us > 0 ? older_than_us : 0;
    if (sized && (rc = oldest_session(store, &start_us)) == SQLITE_ROW && start_us > cut)
        cut = start_us;
    if (sized && rc != SQLITE_ROW && rc != SQLITE_DONE)
        return rc;
    if (cut > 0 && *deleted < max_rows) {
        sqlite3_stmt *st = store->stmt[ST_PRUNE_SENSOR];
        bind_int(store, st, 1, cut);
        bind_int(store, st, 2, max_rows - *deleted);
        if ((rc = step_reset(store, st)) != SQLITE_DONE)
            return rc;
        *deleted += sqlite3_changes(store->db);
    }
    /* What this call freed, plus a bounded share of what earlier calls left: the time
     * stays in proportion to the deleting. Nothing happens without auto_vacuum. */
    if ((rc = live_size(store, &live, &free_after)) != SQLITE_OK)
        return rc;
    int64_t pages = STORE_PRUNE_VACUUM_PAGES + (free_after > free_before ?
                                                free_after - free_before : 0);
    if (pages > free_after)
        pages = free_after;
    if (pages > 0) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA incremental_vacuum(%lld)", (long long)pages);
        rc = sqlite3_exec(store->db, sql, NULL, NULL, NULL);
    }
    return rc == SQLITE_OK ? SQLITE_DONE : rc;
}

/* The open batch is committed first and the pruning is a transaction of its own, not part
 * of the batch: a failed prune then rolls back only itself (inside the batch it would take
 * the batch's sessions with it), and no uncommitted session exists to be deleted (one not
 * yet in session_search cannot be: its index 'delete' would corrupt the index). The cost is
 * one more commit per call, WAL without a sync. */
int store_prune(struct mt_store *store, int64_t older_than_us, int64_t max_db_bytes,
                int max_rows, long *deleted_out)
{
    long deleted = 0;
    bool was_pruning_size = store->pruning_size;
    int rc;
    *deleted_out = 0;
    if (!store->writable)
        return store_fail(store, SQLITE_READONLY, "pruning");
    if (max_rows < 1) {
        snprintf(store->error, sizeof store->error, "pruning: max_rows %d is not positive",
                 max_rows);
        return STORE_ERROR;
    }
    if ((rc = store_flush(store)) != STORE_OK)
        return rc;
    if (older_than_us <= 0 && max_db_bytes <= 0) {
        store->pruning_size = false;
        return STORE_OK;
    }
    if ((rc = step_reset(store, store->stmt[ST_BEGIN])) != SQLITE_DONE)
        return store_fail(store, rc, "starting to prune");
    rc = prune_batch(store, older_than_us, max_db_bytes, max_rows, &deleted);
    if (rc == SQLITE_DONE)
        rc = step_reset(store, store->stmt[ST_COMMIT]);
    if (rc != SQLITE_DONE) {
        rc = store_fail(store, rc, "pruning");
        if (!sqlite3_get_autocommit(store->db))
            step_reset(store, store->stmt[ST_ROLLBACK]);
        store->pruning_size = was_pruning_size;   /* as if this call had not happened */
        return rc;
    }
    *deleted_out = deleted;
    return STORE_OK;
}

/* ---- reading -------------------------------------------------------------------- */

void store_filter_init(struct store_filter *filter)
{
    memset(filter, 0, sizeof *filter);
    filter->proto = -1;
    filter->direction = -1;
    filter->status = -1;
}

/* Loads messages, recipients and (optionally) the transcript of s. SQLite result code. */
static int load_children(struct mt_store *store, struct mt_session *s, bool with_transcript)
{
    sqlite3_stmt *st = store->stmt[ST_SELECT_MESSAGES];
    int rc;
    sqlite3_bind_int64(st, 1, s->id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct mt_message *m = session_add_message(s);  /* NULL past MT_MESSAGES_MAX */
        if (m && !read_fields(st, 0, message_fields, FIELD_COUNT(message_fields), m)) {
            rc = SQLITE_NOMEM;   /* its strings are freed with s */
            break;
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        goto end;
    st = store->stmt[ST_SELECT_RECIPIENTS];
    sqlite3_bind_int64(st, 1, s->id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct mt_recipient *r = session_add_recipient(s);
        if (r && !read_fields(st, 0, recipient_fields, FIELD_COUNT(recipient_fields), r)) {
            rc = SQLITE_NOMEM;
            break;
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE || !with_transcript)
        goto end;
    st = store->stmt[ST_SELECT_TRANSCRIPT];
    sqlite3_bind_int64(st, 1, s->id);
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(st, 0);
        size_t len = text ? (size_t)sqlite3_column_bytes(st, 0) : 0;
        if (len > MT_TRANSCRIPT_MAX_BYTES)
            len = MT_TRANSCRIPT_MAX_BYTES;
        rc = SQLITE_NOMEM;
        if ((s->transcript = malloc(len + 1))) {
            memcpy(s->transcript, text ? text : "", len);
            s->transcript[len] = '\0';   /* for convenience; transcript_len is the size */
            s->transcript_len = len;
            s->transcript_cap = len + 1;
            rc = SQLITE_DONE;
        }
    }
    sqlite3_reset(st);
end:
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Columns first..first + n) of the current row hold something: text, or a number not 0. */
static bool fields_present(sqlite3_stmt *st, int first, const struct field *fields, int n)
{
    for (int i = 0; i < n; i++) {
        int col = first + i;
        if (fields[i].kind == F_TEXT || fields[i].kind == F_STR ? sqlite3_column_bytes(st, col) > 0
                                     : sqlite3_column_int64(st, col) != 0)
            return true;
    }
    return false;
}

/* Reads the TLS and DNS facts of the current row into s, allocating each record only when
 * the row has such facts (a DNS row always has its lookup). SQLite result code. */
static int read_facts(sqlite3_stmt *st, struct mt_session *s)
{
    if (fields_present(st, SC_tls_version, tls_fields, FIELD_COUNT(tls_fields))) {
        struct mt_tls_info *tls = session_tls_alloc(s);
        if (!tls)
            return SQLITE_NOMEM;
        if (!read_fields(st, SC_tls_version, tls_fields, FIELD_COUNT(tls_fields), tls))
            return SQLITE_NOMEM;
    }
    if (s->proto == MT_PROTO_DNS ||
        fields_present(st, SC_dns_qname, dns_fields, FIELD_COUNT(dns_fields))) {
        struct mt_dns_info *dns = session_dns_alloc(s);
        if (!dns)
            return SQLITE_NOMEM;
        if (!read_fields(st, SC_dns_qname, dns_fields, FIELD_COUNT(dns_fields), dns))
            return SQLITE_NOMEM;
    }
    return SQLITE_OK;
}

/* Builds a session from the current row of st (SESSION_SELECT columns). */
static int session_from_row(struct mt_store *store, sqlite3_stmt *st, bool with_transcript,
                            struct mt_session **out)
{
    const char *proto = (const char *)sqlite3_column_text(st, SC_proto);
    int p = proto ? proto_from_name(proto) : -1;
    struct mt_session *s = session_new(p >= 0 ? (enum mt_proto)p : MT_PROTO_SMTP);
    int rc;
    *out = NULL;
    if (!s)
        return store_fail(store, SQLITE_NOMEM, "loading a session");
    rc = read_fields(st, 0, session_fields, FIELD_COUNT(session_fields), s) ? SQLITE_OK
                                                                           : SQLITE_NOMEM;
    s->id = sqlite3_column_int64(st, SC_ID);
    if (rc != SQLITE_OK || (rc = read_facts(st, s)) != SQLITE_OK ||
        (rc = load_children(store, s, with_transcript)) != SQLITE_OK) {
        session_free(s);
        return store_fail(store, rc, "loading a session");
    }
    *out = s;
    return STORE_OK;
}

/* The statement for a query shape, prepared on first use. Only fixed SQL text goes in;
 * every value from the filter is bound. NULL (with store->error set) on failure. */
static sqlite3_stmt *query_statement(struct mt_store *store, unsigned shape)
{
    char sql[4096];
    size_t len;
    const char *glue = " WHERE ";
    bool count_only = shape & (1u << QC_COUNT_ONLY);
    if (store->query[shape])
        return store->query[shape];
    /* Counting a search and nothing else: the index (or the documents) alone. */
    if (shape == ((1u << QC_COUNT_ONLY) | (1u << QC_MATCH))) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM session_text WHERE id IN ("
                 SEARCH_CANDIDATES ") AND " SEARCH_CHECK);
        goto prepare;
    }
    if (shape == ((1u << QC_COUNT_ONLY) | (1u << QC_MATCH_EXACT))) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM session_search"
                 " WHERE session_search MATCH :match");
        goto prepare;
    }
    if (shape == ((1u << QC_COUNT_ONLY) | (1u << QC_TEXT))) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM session_text"
                 " WHERE doc LIKE :grep ESCAPE '\\'");
        goto prepare;
    }
    len = (size_t)snprintf(sql, sizeof sql, "%s", count_only ?
                           "SELECT count(*) FROM sessions" : SESSION_SELECT);
    for (int c = 0; c < QC_OLDEST_FIRST; c++) {   /* the WHERE clauses */
        if (!(shape & (1u << c)))
            continue;
        bool not_index = !count_only && (c == QC_MATCH || c == QC_MATCH_EXACT || c == QC_TEXT ||
                                         (c == QC_DIRECTION && shape >> QC_ORDER));
        len += (size_t)snprintf(sql + len, sizeof sql - len, "%s%s", glue,
                                not_index ? "+" : "");
        glue = " AND ";
        if (c == QC_DIRECTION && !(shape & (1u << QC_PROTO))) {
            /* a direction names mail sessions (the Outbound/Inbound tabs): a DNS lookup
             * is stored "out" but is neither */
            len += (size_t)snprintf(sql + len, sizeof sql - len, "%s AND proto <> 'dns'",
                                    clause_sql[c]);
            continue;
        }
        if (c != QC_FAILED) {
            len += (size_t)snprintf(sql + len, sizeof sql - len, "%s", clause_sql[c]);
            continue;
        }
        const char *sep = "status IN (";
        for (int st = 0; st < MT_STATUS_COUNT; st++) {
            if (status_is_failure((enum mt_status)st)) {
                len += (size_t)snprintf(sql + len, sizeof sql - len, "%s'%s'", sep,
                                        status_name((enum mt_status)st));
                sep = ",";
            }
        }
        len += (size_t)snprintf(sql + len, sizeof sql - len, ")");
    }
    if (!count_only) {
        len += (size_t)snprintf(sql + len, sizeof sql - len, order_sql[shape >> QC_ORDER],
                                shape & (1u << QC_OLDEST_FIRST) ? "ASC" : "DESC");
        snprintf(sql + len, sizeof sql - len, " LIMIT :limit OFFSET :offset");
    }
prepare:;
    int rc = sqlite3_prepare_v3(store->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                &store->query[shape], NULL);
    if (rc != SQLITE_OK) {
        store_fail(store, rc, "preparing a query");
        store->query[shape] = NULL;
    }
    return store->query[shape];
}

/* "%text%" with LIKE's wildcards escaped by backslash. Caller frees. */
static char *like_pattern(const char *text)
{
    size_t len = strlen(text), n = 0;
    char *pattern = malloc(2 * len + 3);
    if (!pattern)
        return NULL;
    pattern[n++] = '%';
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '%' || text[i] == '_' || text[i] == '\\')
            pattern[n++] = '\\';
        pattern[n++] = text[i];
    }
    pattern[n++] = '%';
    pattern[n] = '\0';
    return pattern;
}

/* The length of the valid UTF-8 character at s (1..4; no overlong form, no surrogate), or 0
 * if there is none. */
static size_t utf8_char(const unsigned char *s)
{
    size_t need = s[0] < 0x80 ? 1 : s[0] >= 0xc2 && s[0] <= 0xdf ? 2 :
                  s[0] >= 0xe0 && s[0] <= 0xef ? 3 : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
    uint32_t cp = need == 2 ? s[0] & 0x1fu : need == 3 ? s[0] & 0x0fu : s[0] & 0x07u;
    if (need < 2)
        return need;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3fu);
    }
    if ((need == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (need == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return need;
}

/* True when LIKE over the one-document-per-session text answers exactly what LIKE over each
 * field would: no control byte (a newline separates the fields) and valid UTF-8. */
static bool text_like_exact(const char *text)
{
    const unsigned char *p = (const unsigned char *)text;
    for (size_t i = 0, step; p[i]; i += step)
        if (p[i] < 0x20 || !(step = utf8_char(p + i)))
            return false;
    return true;
}

/* The FTS5 query for grep text: its trigrams, each a quoted string (ASCII letters lowered,
 * double quotes doubled), joined by AND: every third one and the last, which cover the
 * text (one_trigram: the text is one, so the documents that hold it are the answer);
 * SEARCH_CHECK does the rest. NULL when the index cannot name every document LIKE
 * would find: fewer than 3 characters (trigrams), a control byte (the document's field
 * separator is one), or text that is not valid UTF-8. *nomem is set when malloc failed. */
static char *grep_trigrams(const char *text, bool *one_trigram, bool *nomem)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t chars = 0, len = strlen(text), n = 0;
    char *query;
    *nomem = false;
    if (!text_like_exact(text))
        return NULL;
    for (size_t i = 0; i < len; i += utf8_char(p + i))
        chars++;
    if (chars < 3)
        return NULL;
    *one_trigram = chars == 3;
    /* A byte is in two trigrams at most (its stride's and the last), doubled if a quote;
     * each trigram adds two quotes and " AND ". */
    if (!(query = malloc(4 * len + 7 * chars + 1))) {
        *nomem = true;
        return NULL;
    }
    for (size_t c = 0, at = 0; c + 3 <= chars; at += utf8_char(p + at), c++) {
        if (c % 3 != 0 && c + 3 != chars)
            continue;
        size_t end = at;
        for (int k = 0; k < 3; k++)
            end += utf8_char(p + end);
        if (n)
            n += (size_t)sprintf(query + n, " AND ");
        query[n++] = '"';
        for (size_t i = at; i < end; i++) {
            char ch = text[i] >= 'A' && text[i] <= 'Z' ? (char)(text[i] - 'A' + 'a') : text[i];
            if (ch == '"')
                query[n++] = '"';
            query[n++] = ch;
        }
        query[n++] = '"';
    }
    query[n] = '\0';
    return query;
}

static void bind_named_int(sqlite3_stmt *st, const char *name, int64_t v)
{
    sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, name), v);
}

static void bind_named_text(sqlite3_stmt *st, const char *name, const char *text)
{
    sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, name), text, -1, SQLITE_STATIC);
}

/* A bulk load builds the search index aside (search_pending has a row): the index does not
 * hold every document yet. False on a database made before the table. */
static bool search_pending(struct mt_store *store)
{
    sqlite3_stmt *st;
    bool pending = false;
    if (sqlite3_prepare_v2(store->db, "SELECT 1 FROM search_pending LIMIT 1", -1, &st, NULL)
            == SQLITE_OK)
        pending = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return pending;
}

/* The statement for filter f (count_only: its count(*)), with every value bound. The
 * caller resets it, clears its bindings and frees both patterns (bound strings: the LIKE
 * pattern and the index query). NULL on failure. */
static sqlite3_stmt *filter_statement(struct mt_store *store, const struct store_filter *f,
                                      bool count_only, char *patterns[2])
{
    bool grep = f->grep && f->grep[0], nomem = false;
    unsigned order = (unsigned)f->order < STORE_ORDER_COUNT ? (unsigned)f->order : 0;
    int rc;
    char **like = &patterns[0], **match = &patterns[1];
    *like = *match = NULL;
    if (grep && (rc = index_texts(store)) != SQLITE_DONE) {   /* this batch's, for us */
        store_fail(store, rc, "indexing sessions");
        return NULL;
    }
    enum query_clause how = QC_GREP;
    if (grep && store->search && search_pending(store)) {
        how = text_like_exact(f->grep) ? QC_TEXT : QC_GREP;
    } else if (grep && store->search) {
        bool one_trigram = false;
        *match = grep_trigrams(f->grep, &one_trigram, &nomem);
        how = *match ? (one_trigram ? QC_MATCH_EXACT : QC_MATCH)
                     : text_like_exact(f->grep) ? QC_TEXT : QC_GREP;
    }
    if (grep && !nomem)
        nomem = !(*like = like_pattern(f->grep));
    if (nomem) {
        free(*match);
        free(*like);
        *like = *match = NULL;
        store_fail(store, SQLITE_NOMEM, "querying sessions");
        return NULL;
    }
    unsigned shape = (f->proto >= 0 ? 1u << QC_PROTO : 0) |
        (f->direction >= 0 ? 1u << QC_DIRECTION : 0) | (f->status >= 0 ? 1u << QC_STATUS : 0) |
        (f->failed_only ? 1u << QC_FAILED : 0) |
        (grep ? 1u << how : 0) |
        (f->since_us ? 1u << QC_SINCE : 0) | (f->until_us ? 1u << QC_UNTIL : 0) |
        (f->flags_any ? 1u << QC_FLAGS : 0) |
        (f->oldest_first && !count_only ? 1u << QC_OLDEST_FIRST : 0) |
        (count_only ? 1u << QC_COUNT_ONLY : order << QC_ORDER);
    sqlite3_stmt *st = query_statement(store, shape);
    if (!st) {
        free(*match);
        free(*like);
        *like = *match = NULL;
        return NULL;
    }
    if (f->proto >= 0)
        bind_named_text(st, ":proto", proto_name((enum mt_proto)f->proto));
    if (f->direction >= 0)
        bind_named_text(st, ":direction", direction_name((enum mt_direction)f->direction));
    if (f->status >= 0)
        bind_named_text(st, ":status", status_name((enum mt_status)f->status));
    if (grep)
        bind_named_text(st, ":grep", *like);
    if (how == QC_MATCH || how == QC_MATCH_EXACT)
        bind_named_text(st, ":match", *match);
    if (f->since_us)
        bind_named_int(st, ":since", f->since_us);
    if (f->until_us)
        bind_named_int(st, ":until", f->until_us);
    if (f->flags_any)
        bind_named_int(st, ":flags", f->flags_any);
    if (!count_only) {
        bind_named_int(st, ":limit", f->limit > 0 ? f->limit : -1);
        bind_named_int(st, ":offset", f->offset > 0 ? f->offset : 0);
    }
    return st;
}

int store_query_sessions(struct mt_store *store, const struct store_filter *filter,
                         store_session_fn callback, void *ctx)
{
    struct store_filter all;
    char *patterns[2];
    int rc, count = 0, result = STORE_OK;
    if (!filter) {
        store_filter_init(&all);
        filter = &all;
    }
    sqlite3_stmt *st = filter_statement(store, filter, false, patterns);
    if (!st)
        return STORE_ERROR;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct mt_session *s;
        if ((result = session_from_row(store, st, filter->with_transcript, &s)) != STORE_OK)
            goto end;
        count++;
        if (callback(ctx, s) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE)
        result = store_fail(store, rc, "querying sessions");
end:
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);   /* :grep and :match point into patterns */
    free(patterns[0]);
    free(patterns[1]);
    return result == STORE_OK ? count : result;
}

long store_count_sessions(struct mt_store *store, const struct store_filter *filter)
{
    struct store_filter all;
    char *patterns[2];
    long result;
    if (!filter) {
        store_filter_init(&all);
        filter = &all;
    }
    sqlite3_stmt *st = filter_statement(store, filter, true, patterns);
    if (!st)
        return STORE_ERROR;
    int rc = sqlite3_step(st);
    result = rc == SQLITE_ROW ? (long)sqlite3_column_int64(st, 0)
                              : store_fail(store, rc, "counting sessions");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    free(patterns[0]);
    free(patterns[1]);
    return result;
}

int store_load_session(struct mt_store *store, int64_t id, struct mt_session **out)
{
    sqlite3_stmt *st = store->stmt[ST_SELECT_SESSION];
    int rc, result;
    *out = NULL;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        result = session_from_row(store, st, true, out);
    } else if (rc == SQLITE_DONE) {
        snprintf(store->error, sizeof store->error, "no session with id %lld", (long long)id);
        result = STORE_NOT_FOUND;
    } else {
        result = store_fail(store, rc, "loading a session");
    }
    sqlite3_reset(st);
    return result;
}

/* On the user's index (user, start_us): the sessions of that user that began by then and
 * were still open at that moment; the user as typed, in lower case (servers fold logins:
 * Dovecot's %Lu) or in upper case, each an index lookup; not those that never logged in,
 * which hold no lock and no slot; for a per-address limit ("user+IP") only those from the
 * same client. */
static const char peer_sql[] =
    "SELECT id, client_ip, start_us, end_us, status, count(*) OVER () FROM sessions"
    " WHERE user IN (:user, lower(:user), upper(:user))"
    " AND start_us <= :at AND end_us >= :at AND proto = :proto AND server_ip = :server"
    " AND id <> :id AND status NOT IN ('auth_failed', 'temp_failed', 'login_disabled',"
    " 'server_rejected', 'no_mail', 'tls_failed') AND (:client = '' OR client_ip = :client)"
    " ORDER BY start_us LIMIT :cap";

int store_peer_sessions(struct mt_store *store, const struct mt_session *session,
                        struct store_peers *out)
{
    sqlite3_stmt *st = NULL;
    out->count = out->total = 0;
    out->looked = false;
    if (!session->user[0])
        return STORE_OK;
    int rc = sqlite3_prepare_v2(store->db, peer_sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store_fail(store, rc, "preparing the peer query");
    bind_named_text(st, ":user", session->user);
    bind_named_int(st, ":at", session->start_us);
    bind_named_text(st, ":proto", proto_name(session->proto));
    bind_named_text(st, ":server", session->server_ip);
    bind_named_int(st, ":id", session->id);
    bind_named_int(st, ":cap", STORE_PEERS_MAX);
    bind_named_text(st, ":client", text_find_ci(session->status_line, strlen(session->status_line),
                                                "user+IP") >= 0 ? session->client_ip : "");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && out->count < STORE_PEERS_MAX) {
        struct store_peer *p = &out->list[out->count++];
        const char *ip = (const char *)sqlite3_column_text(st, 1);
        const char *status = (const char *)sqlite3_column_text(st, 4);
        p->id = sqlite3_column_int64(st, 0);
        snprintf(p->client_ip, sizeof p->client_ip, "%s", ip ? ip : "");
        p->start_us = sqlite3_column_int64(st, 2);
        p->end_us = sqlite3_column_int64(st, 3);
        p->status = status_from_name(status ? status : "");
        out->total = (size_t)sqlite3_column_int64(st, 5);
    }
    sqlite3_finalize(st);
    out->looked = rc == SQLITE_DONE || rc == SQLITE_ROW;
    return out->looked ? STORE_OK : store_fail(store, rc, "finding the peers");
}

/* ---- message trace ---------------------------------------------------------------- */

/* Sessions that carried one message, in time order (the guesses for hops without the
 * Message-ID: store_trace_match in store.h, and the SQL below): those whose message has this
 * Message-ID (with or without its angle brackets); then, as a fallback for the hop before
 * the header was added (a client that sends none: its server adds one), a message without
 * a Message-ID that could be the same one: accepted (a later hop carried it on), from the
 * same envelope sender, at most 10 minutes before a hop found by id and no larger than it,
 * by at most 2% + 2 KiB (the headers a server adds). Looser, every small message of those
 * minutes matched (a spam rejection among them). An address instead of an id traces every
 * session where it was the sender or a recipient. */
static int trace_query(struct mt_store *store, const char *key, bool address,
                       store_trace_fn callback, void *ctx);

/* A Message-ID also contains '@': try it as an id first, then as an address. */
int store_trace(struct mt_store *store, const char *key, store_trace_fn callback, void *ctx)
{
    int hops = trace_query(store, key, false, callback, ctx);
    if (hops == 0 && strchr(key, '@') && key[0] != '<')
        hops = trace_query(store, key, true, callback, ctx);
    return hops;
}

static int trace_query(struct mt_store *store, const char *key, bool address,
                       store_trace_fn callback, void *ctx)
{
    /* Hops by Message-ID (match 0); guesses for hops without one: by size and time (1),
     * and by envelope and time (2): a later transaction, made by the server of a hop that
     * accepted the message (from its address), from the same sender to one of the
     * message's recipients, that never reached DATA (refused or
     * deferred at RCPT), within Postfix's 5-day queue lifetime, not after a later hop of
     * this message took that recipient (it went on), and not after another message with an
     * id from that sender to that recipient was accepted (a retry belongs to the latest
     * message before it). The lowest match wins for a session. */
    static const char by_id[] =
        "WITH hops AS (SELECT session_id, idx, size, start_us, mail_from, message_id, status"
        "  FROM messages"
        "  WHERE message_id = ?1 OR message_id = '<' || ?1 || '>' OR '<' || message_id || '>' = ?1),"
        " found(id, how) AS ("
        " SELECT s.id, 0 FROM sessions s WHERE s.id IN (SELECT session_id FROM hops)"
        " UNION SELECT m.session_id, 1 FROM messages m, hops h"
        "  WHERE m.message_id = '' AND m.size > 0 AND h.size > 0"
        "  AND m.session_id NOT IN (SELECT session_id FROM hops)"
        "  AND m.status IN ('delivered', 'partial')"
        "  AND (h.mail_from = '' OR m.mail_from = h.mail_from COLLATE NOCASE)"
        "  AND m.size <= h.size AND h.size - m.size <= h.size / 50 + 2048"
        "  AND m.start_us <= h.start_us AND h.start_us - m.start_us <= 600000000"
        " UNION SELECT m.session_id, 2 FROM hops h"
        "  JOIN recipients rh ON rh.session_id = h.session_id AND rh.message_idx = h.idx"
        "   AND rh.accepted"
        "  JOIN recipients r ON r.addr = rh.addr"
        "  JOIN messages m ON m.session_id = r.session_id AND m.idx = r.message_idx"
        "  JOIN sessions sh ON sh.id = h.session_id JOIN sessions sm ON sm.id = m.session_id"
        "  WHERE h.status IN ('delivered', 'partial') AND h.mail_from != ''"
        "  AND sm.client_ip = sh.server_ip"
        "  AND m.message_id = '' AND m.size = 0"
        "  AND m.mail_from = h.mail_from COLLATE NOCASE"
        "  AND m.start_us > h.start_us AND m.start_us - h.start_us <= 432000000000"
        "  AND m.session_id NOT IN (SELECT session_id FROM hops)"
        /* not once a later hop of this message took that recipient: it went on */
        "  AND NOT EXISTS (SELECT 1 FROM hops h3 JOIN recipients r3"
        "   ON r3.session_id = h3.session_id AND r3.message_idx = h3.idx"
        "   WHERE r3.addr = r.addr AND r3.accepted"
        "   AND h3.start_us > h.start_us AND h3.start_us < m.start_us)"
        "  AND NOT EXISTS (SELECT 1 FROM recipients r2 JOIN messages m2"
        "   ON m2.session_id = r2.session_id AND m2.idx = r2.message_idx"
        "   WHERE r2.addr = r.addr AND r2.accepted AND m2.message_id != ''"
        "   AND m2.message_id != h.message_id AND m2.mail_from = h.mail_from COLLATE NOCASE"
        "   AND m2.status IN ('delivered', 'partial')"
        "   AND m2.start_us > h.start_us AND m2.start_us < m.start_us))"
        " SELECT id, min(how) FROM found GROUP BY id";
    static const char by_address[] =
        "SELECT id, 0 FROM sessions WHERE mail_from = ?1 COLLATE NOCASE"
        " UNION SELECT session_id, 0 FROM recipients WHERE addr = ?1 COLLATE NOCASE"
        " UNION SELECT session_id, 0 FROM messages WHERE mail_from = ?1 COLLATE NOCASE";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(store->db, address ? by_address : by_id, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store_fail(store, rc, "preparing a trace");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    /* Load after the query: store_load_session reuses prepared statements. */
    struct hop { int64_t id; enum store_trace_match match; } *hops = NULL;
    size_t count = 0, cap = 0;
    int result = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            size_t next = cap ? cap * 2 : 16;
            struct hop *grown = realloc(hops, next * sizeof *hops);
            if (!grown) {
                result = STORE_NOMEM;
                break;
            }
            hops = grown;
            cap = next;
        }
        hops[count].id = sqlite3_column_int64(st, 0);
        int how = sqlite3_column_int(st, 1);
        hops[count].match = how == 1 ? STORE_TRACE_SIZE : how == 2 ? STORE_TRACE_ENVELOPE
                                                                   : STORE_TRACE_KEY;
        count++;
    }
    if (result == 0 && rc != SQLITE_DONE)
        result = store_fail(store, rc, "tracing a message");
    sqlite3_finalize(st);
    struct mt_session **loaded = result == 0 && count ? calloc(count, sizeof *loaded) : NULL;
    for (size_t i = 0; result == 0 && i < count; i++) {
        if (!loaded) {
            result = STORE_NOMEM;
            break;
        }
        int lr = store_load_session(store, hops[i].id, &loaded[i]);
        if (lr != STORE_OK)
            result = lr;
    }
    /* Time order: the hops of a message follow each other. */
    for (size_t i = 1; result == 0 && i < count; i++)
        for (size_t j = i; j > 0 && loaded[j]->start_us < loaded[j - 1]->start_us; j--) {
            struct mt_session *t = loaded[j]; loaded[j] = loaded[j - 1]; loaded[j - 1] = t;
            struct hop h = hops[j]; hops[j] = hops[j - 1]; hops[j - 1] = h;
        }
    for (size_t i = 0; i < count; i++) {
        if (result == 0 && loaded && loaded[i]) {
            callback(ctx, loaded[i], hops[i].match);
            loaded[i] = NULL;
        } else if (loaded) {
            session_free(loaded[i]);
        }
    }
    free(loaded);
    free(hops);
    return result == 0 ? (int)count : result;
}
