/* pipeline.c — one pass over a capture: frames in, stored sessions out. */
#include "cli/pipeline.h"

#include "capture/linklayer.h"
#include "cli/attempt_limit.h"
#include "cli/health.h"
#include "protocols/connection.h"
#include "protocols/dnswatch.h"
#include "store/store.h"
#include "store/writer.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* How often (in capture time) idle streams and unanswered SYNs are looked for, and how
 * often capture statistics are written for the console's status bar. */
#define TICK_INTERVAL_US 1000000
#define STATS_INTERVAL_S 5
/* Retention: sessions deleted per store_prune() call, and the time spent pruning per
 * tick, so that a large backlog never stalls capture. */
#define PRUNE_ROWS 200
#define PRUNE_BUDGET_CALLS 2
/* Over its size limit, retention goes on within a tick up to this much wall time; and a
 * database still over by half again (sessions arrive faster than they can be deleted:
 * 0.2 ms each) takes no new session until it is under: --max-db-mb bounds the file. */
#define PRUNE_OVER_BUDGET_US 250000
#define OVER_LIMIT_PCT 150
/* A sensor keeps its database alive on its own: a failed one (a full disk since freed) is
 * opened again this often, and the path is checked this often for a file deleted or
 * replaced under it (the sensor would write on into a deleted file). */
#define STORE_RETRY_FIRST_US (5LL * 1000000)   /* then doubled, up to: */
#define STORE_RETRY_US (60LL * 1000000)
#define STORE_PATH_CHECK_US (10LL * 1000000)

struct pipeline {
    const struct pipeline_options *options;
    struct pipeline_summary *summary;
    struct mt_store *store;
    struct store_writer *writer;    /* owns the store's writes while it runs */
    bool store_failed;
    struct dns_watch *dns;
    struct capture_source *source;
    /* capture health */
    struct capture_health health;
    uint64_t drops_seen;            /* kernel + interface drops at the last tick */
    uint64_t drop_epoch;            /* bumped whenever drops_seen grew */
    /* The input went from one file to another across a minute or more without a packet
     * (captures of different times read together): the latest such gap's start. A
     * connection silent since before it was not seen silent: session->input_gap_us. */
    int64_t input_gap_us;
    int64_t prune_after_us;         /* a failed prune (full disk) waits a minute */
    bool over_limit;                /* past --max-db-mb by half: sessions are dropped */
    uint64_t dropped_at_start;      /* dropped_over_limit when it began */
    int64_t store_retry_us;         /* a sensor's failed database: opened again then, */
    int64_t store_retry_wait_us;    /* after this long (doubled at each failure) */
    int64_t path_check_us;          /* a sensor's database path: looked at again then */
    dev_t db_dev;                   /* the database file opened (0: not known) */
    ino_t db_ino;
    uint64_t sessions_at_failure;   /* sessions_total when the database failed: those
                                     * decoded since are lost (and the batch rolled back) */
    int64_t last_tick_us;           /* capture time of the last tick */
    int64_t stats_written_us;       /* the time of the last sensor_stats row */
    struct attempt_limit attempts;  /* a flood becomes one row a minute, not one per SYN */
};

/* A connection being decoded, and what the capture's health needs of it. */
struct live_session {
    struct mt_connection conn;
    uint64_t drop_epoch;            /* the pipeline's drop_epoch when it opened */
    size_t messages_announced;      /* to the DNS watch (dns_watch_inbound()) */
};

void pipeline_options_defaults(struct pipeline_options *options)
{
    memset(options, 0, sizeof *options);
    options->db_path = "mailtap.db";
    localnets_defaults(&options->local);
    memset(options->port_proto, PIPELINE_NO_PROTO, sizeof options->port_proto);
    static const struct { uint16_t port; enum mt_proto proto; } standard[] = {
        { 25, MT_PROTO_SMTP }, { 465, MT_PROTO_SMTP }, { 587, MT_PROTO_SMTP },
        { 2525, MT_PROTO_SMTP }, { 110, MT_PROTO_POP3 }, { 995, MT_PROTO_POP3 },
        { 143, MT_PROTO_IMAP }, { 993, MT_PROTO_IMAP }, { 53, MT_PROTO_DNS },
    };
    for (size_t i = 0; i < sizeof standard / sizeof standard[0]; i++)
        options->port_proto[standard[i].port] = (uint8_t)standard[i].proto;
    options->max_streams = 32768;
    options->attempt_rows = ATTEMPT_ROWS_PER_MINUTE;
    options->idle_timeout_us = 31LL * 60 * 1000000;
}

bool pipeline_options_add_port(struct pipeline_options *options, const char *spec)
{
    int proto = PIPELINE_GUESS_PROTO;
    const char *number = spec;
    const char *colon = strchr(spec, ':');
    if (colon) {
        char name[16];
        size_t len = (size_t)(colon - spec);
        if (len == 0 || len >= sizeof name)
            return false;
        for (size_t i = 0; i < len; i++)   /* "SMTP:2526" as "smtp:2526" */
            name[i] = (char)tolower((unsigned char)spec[i]);
        name[len] = '\0';
        proto = proto_from_name(name);
        if (proto < 0)
            return false;
        number = colon + 1;
    }
    char *end;
    long port = strtol(number, &end, 10);
    if (*end != '\0' || end == number || port < 1 || port > 65535)
        return false;
    options->port_proto[port] = (uint8_t)proto;
    return true;
}

/* Counts the session and hands it to the writer thread, which frees it. */
static void store_session(struct pipeline *pipeline, struct mt_session *session)
{
    struct pipeline_summary *summary = pipeline->summary;
    summary->sessions[session->proto]++;
    summary->sessions_total++;
    if (status_is_failure(session->status)) {   /* a failed lookup is not a failed session */
        if (session->proto == MT_PROTO_DNS)
            summary->dns_failures++;
        else
            summary->failures++;
    }
    if (pipeline->store_failed) {
        summary->store_errors += pipeline->store == NULL;   /* no database: this one is lost */
        session_free(session);
        return;
    }
    if (pipeline->over_limit) {   /* counted and said: retention cannot keep up */
        summary->dropped_over_limit++;
        session_free(session);
        return;
    }
    if (store_writer_put(pipeline->writer, session) != STORE_OK) {
        char message[512];
        store_writer_error(pipeline->writer, message, sizeof message);
        summary->store_errors++;
        fprintf(stderr, "mailtap: %s\n", message);
        /* A full disk stays full: stop writing rather than fail once per session (a
         * sensor tries again in a minute: keep_store_alive()). */
        pipeline->store_failed = true;
        pipeline->sessions_at_failure = summary->sessions_total - 1;
        pipeline->store_retry_wait_us = STORE_RETRY_FIRST_US;
        pipeline->store_retry_us = pipeline->last_tick_us + STORE_RETRY_FIRST_US;
    }
}

/* The protocol of a row for a connection to this port before anything was heard from it. */
static enum mt_proto row_proto(uint8_t port_proto)
{
    return port_proto == PIPELINE_GUESS_PROTO ? MT_PROTO_SMTP : (enum mt_proto)port_proto;
}

static bool server_is_local(const struct pipeline *pipeline, const struct flow *flow)
{
    return localnets_contains(&pipeline->options->local, &flow->server);
}

/* The name the session's client looked up for the server's address, from the DNS seen
 * before (the MX host, for a relay): said at the top of the transcript, and given to the
 * certificate check (tls may be NULL). */
static void name_the_server(struct pipeline *pipeline, struct mt_session *session,
                            struct tls_follow *tls, int64_t ts_us)
{
    char name[MT_NAME_MAX], mx_of[MT_NAME_MAX];
    if (!pipeline->dns || !session || session->proto == MT_PROTO_DNS ||
        !dns_watch_name_of(pipeline->dns, session->client_ip, session->server_ip, ts_us,
                           name, sizeof name, mx_of, sizeof mx_of))
        return;
    if (mx_of[0])
        session_transcript_addf(session, ts_us, 'I', "[server %s, a mail exchanger (MX) of %s:"
                                " the client's DNS lookup gave %s]", name, mx_of,
                                session->server_ip);
    else
        session_transcript_addf(session, ts_us, 'I', "[server %s: the client's DNS lookup gave"
                                " %s]", name, session->server_ip);
    tls_follow_looked_up(tls, name);
}

static void *on_opened(void *ctx, const struct flow *flow, int64_t ts_us)
{
    struct pipeline *pipeline = ctx;
    uint8_t proto = pipeline->options->port_proto[flow->server_port];
    if (proto == PIPELINE_NO_PROTO)
        return NULL;
    struct live_session *live = calloc(1, sizeof *live);
    if (!live)
        return NULL;
    if (!connection_open(&live->conn, row_proto(proto), proto == PIPELINE_GUESS_PROTO, flow,
                         server_is_local(pipeline, flow), ts_us)) {
        free(live);
        return NULL;
    }
    name_the_server(pipeline, live->conn.session, live->conn.tls, ts_us);
    live->drop_epoch = pipeline->drop_epoch;
    return live;
}

static void on_data(void *ctx, void *stream, enum stream_side from, const char *bytes,
                    size_t len, int64_t ts_us)
{
    struct pipeline *pipeline = ctx;
    struct live_session *live = stream;
    connection_data(&live->conn, pipeline->dns, from, bytes, len, ts_us);
    const struct mt_session *session = live->conn.session;
    if (pipeline->dns && session && session->message_count > live->messages_announced)
        dns_watch_inbound(pipeline->dns, session, &live->messages_announced, false, ts_us);
}

static void on_conflict(void *ctx, void *stream, enum stream_side from, int64_t ts_us)
{
    (void)ctx;
    struct live_session *live = stream;
    connection_overlap_conflict(&live->conn, from, ts_us);
}

static void on_reset(void *ctx, void *stream, enum stream_side from, int64_t ts_us)
{
    (void)ctx;
    struct live_session *live = stream;
    connection_reset_by(&live->conn, from, ts_us);
}

static void on_fin(void *ctx, void *stream, enum stream_side from, int64_t ts_us)
{
    (void)ctx;
    struct live_session *live = stream;
    connection_fin_by(&live->conn, from, ts_us);
}

static void on_snap_cut(void *ctx, void *stream, int64_t ts_us)
{
    (void)ctx, (void)ts_us;
    struct live_session *live = stream;
    connection_snap_cut(&live->conn);
}

static void on_closed(void *ctx, void *stream, enum stream_end how, bool data_lost, int64_t ts_us)
{
    struct pipeline *pipeline = ctx;
    struct live_session *live = stream;
    if (live->conn.session && how == STREAM_END_OF_INPUT)
        live->conn.session->input_gap_us = pipeline->input_gap_us;
    struct mt_session *session = connection_close(&live->conn, how, data_lost, ts_us);
    if (session && how == STREAM_END_OF_INPUT && session->end != MT_END_EOF)
        pipeline->summary->ended_at_end++;
    bool dropped = live->drop_epoch != pipeline->drop_epoch;
    size_t announced = live->messages_announced;
    free(live);
    if (!session)
        return;   /* DNS over TCP: its lookups were reported as they completed */
    if (!data_lost && dropped && session_status_is_inconclusive(session))
        connection_capture_lost(session, ts_us, "the kernel dropped packets while it was open");
    if (session->flags & MT_FLAG_CAPTURE_GAP) {
        pipeline->summary->capture_gaps++;
        health_gap(&pipeline->health);
    }
    if (session->bytes_s2c > 0)
        health_answered(&pipeline->health, session->server_port);
    if (pipeline->dns)
        dns_watch_inbound(pipeline->dns, session, &announced, true, session->end_us);
    store_session(pipeline, session);
}

static void on_dns_row(void *ctx, struct mt_session *row)
{
    store_session(ctx, row);
}

static void on_datagram(void *ctx, const struct flow *flow, enum stream_side from,
                        const uint8_t *payload, size_t len, int64_t ts_us)
{
    struct pipeline *pipeline = ctx;
    if (pipeline->dns)
        dns_watch_datagram(pipeline->dns, flow, from == STREAM_FROM_CLIENT, payload, len, ts_us);
}

/* A connection captured from the client's side alone: what the client sent is decoded (its
 * commands, sender, recipients, message headers; passwords masked as ever) into a session
 * the server never answered. NULL when nothing was kept. */
static struct mt_session *decode_one_side(struct pipeline *pipeline, const struct flow *flow,
                                          uint8_t proto, const struct attempt *attempt)
{
    struct mt_connection conn;
    size_t pos = 0;
    int64_t ts_us;
    const uint8_t *bytes;
    uint32_t len;
    if (!attempt->data || !connection_open(&conn, row_proto(proto), proto == PIPELINE_GUESS_PROTO,
                                           flow, server_is_local(pipeline, flow), attempt->syn_us))
        return NULL;
    name_the_server(pipeline, conn.session, conn.tls, attempt->syn_us);
    while (attempts_data_next(attempt, &pos, &ts_us, &bytes, &len))
        connection_data(&conn, NULL, STREAM_FROM_CLIENT, (const char *)bytes, len, ts_us);
    struct mt_session *session = connection_close(&conn, STREAM_ONE_SIDED, false,
                                                  attempt->last_us);
    if (session && attempt->data_gap)
        session_transcript_addf(session, attempt->last_us, 'I', "[not all the client sent is "
                                "shown: %llu bytes in all]",
                                (unsigned long long)attempt->client_bytes);
    return session;
}

static void on_attempt(void *ctx, const struct flow *flow, enum stream_end how,
                       const struct attempt *attempt)
{
    struct pipeline *pipeline = ctx;
    int64_t syn_us = attempt->syn_us, end_us = attempt->last_us;
    uint8_t proto = pipeline->options->port_proto[flow->server_port];
    /* DNS over TCP (a resolver's retry of a truncated answer) failing to connect is no
     * lookup: the lookup's own row says how it ended (fuzz_pcapfile found a DNS row without
     * a question made so). */
    if (proto == PIPELINE_NO_PROTO || proto == MT_PROTO_DNS)
        return;
    if (how == STREAM_ONE_SIDED || how == STREAM_SERVER_ONLY)
        health_one_sided(&pipeline->health, flow->server_port, how == STREAM_SERVER_ONLY);
    /* Server-only rows are limited as failed attempts are: a flood's SYN-ACKs whose SYNs
     * left a full table early would be as many rows. */
    if (how != STREAM_ONE_SIDED && !attempt_limit_admit(&pipeline->attempts, flow, how, syn_us))
        return;   /* counted: the minute's summary row tells */
    /* What a client seen alone sent is decoded (its endpoints filled on the way). */
    struct mt_session *session = how == STREAM_ONE_SIDED
                                     ? decode_one_side(pipeline, flow, proto, attempt) : NULL;
    if (!session) {
        if (!(session = session_new(row_proto(proto))))
            return;
        connection_fill_endpoints(session, flow, server_is_local(pipeline, flow), syn_us);
        name_the_server(pipeline, session, NULL, syn_us);
    }
    session->end_us = end_us;
    session->end = connection_end(how);
    session->bytes_c2s = attempt->client_bytes;   /* a one-sided capture: what the client sent */
    const char *line;
    enum mt_status status;
    switch (how) {
    case STREAM_REFUSED:
        status = MT_STATUS_REFUSED;
        line = "connection refused: the server answered the SYN with a reset (nothing listening?)";
        break;
    case STREAM_ONE_SIDED:
        status = MT_STATUS_INCOMPLETE;
        line = "only client-to-server packets were captured: check that the mirror port "
               "copies both directions";
        break;
    case STREAM_SERVER_ONLY:
        status = MT_STATUS_INCOMPLETE;
        line = "only server-to-client packets were captured: check that the mirror port "
               "copies both directions";
        break;
    case STREAM_NOT_ESTABLISHED:
        status = MT_STATUS_INCOMPLETE;
        line = "the server answered the SYN but the connection was never established: the "
               "client did not complete the handshake (a spoofed SYN?), packets were lost, "
               "or the stream table was full (raise --max-streams)";
        break;
    case STREAM_END_OF_INPUT:   /* within the SYN timeout: nothing to blame anyone for */
        status = MT_STATUS_INCOMPLETE;
        line = "the capture ended before the connection was established (a rotated file, or "
               "the sensor stopped): its answer may have come after";
        break;
    default:
        status = MT_STATUS_NO_RESPONSE;
        line = "no answer to the connection attempt (SYN): server down, filtered or unreachable";
        break;
    }
    /* After what the client was seen sending, when that was decoded. */
    int64_t note_us = session->transcript_lines > 0 ? end_us : syn_us;
    int index = session_transcript_add(session, note_us, 'I', line, strlen(line));
    session_decide(session, status, line, strlen(line), index);
    store_session(pipeline, session);
}

/* One row for a minute of failed attempts beyond the per-endpoint limit. */
static void on_attempt_summary(void *ctx, const struct attempt_summary *over)
{
    struct pipeline *pipeline = ctx;
    uint8_t proto = pipeline->options->port_proto[over->flow.server_port];
    if (proto == PIPELINE_NO_PROTO)
        return;
    struct mt_session *session = session_new(row_proto(proto));
    if (!session)
        return;
    connection_fill_endpoints(session, &over->flow, server_is_local(pipeline, &over->flow),
                              over->first_us);
    session->end_us = over->last_us;
    session->end = connection_end(over->how);
    bool refused = over->how == STREAM_REFUSED;
    bool half_open = over->how == STREAM_NOT_ESTABLISHED;
    bool server_only = over->how == STREAM_SERVER_ONLY;
    bool cut = over->how == STREAM_END_OF_INPUT;
    char line[MT_TEXT_MAX];
    int n = snprintf(line, sizeof line,
                     "%llu more %s connection attempts to %s in %.0f s from %s%u client "
                     "addresses (last %s): a SYN flood or a scan? Only the first %d a minute "
                     "per server are stored one by one",
                     (unsigned long long)over->counted,
                     refused ? "refused" : half_open ? "half-open (answered, never established)"
                     : server_only ? "server-side-only (the client's packets not captured)"
                     : cut ? "unfinished (the capture ended)" : "unanswered",
                     over->pooled ? "several servers" : session->server_ip,
                     (double)(over->last_us - over->first_us) / 1e6,
                     over->sources_saturated ? "at least " : "about ", over->sources,
                     session->client_ip, pipeline->attempts.rows_per_minute);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    int index = session_transcript_add(session, over->first_us, 'I', line, len);
    pipeline->summary->attempts_folded += over->counted;
    pipeline->summary->summary_rows++;
    session_decide(session, refused ? MT_STATUS_REFUSED
                            : half_open || server_only || cut ? MT_STATUS_INCOMPLETE
                                                       : MT_STATUS_NO_RESPONSE,
                   line, len, index);
    store_session(pipeline, session);
}

static void write_sensor_stats(struct pipeline *pipeline, int64_t ts_us)
{
    if (pipeline->store_failed)
        return;
    /* The final row comes at the last packet's time; an idle live link wrote rows at later
     * (wall clock) times meanwhile, and the newest row is the one `stats` shows. */
    if (ts_us < pipeline->stats_written_us)
        ts_us = pipeline->stats_written_us;
    pipeline->stats_written_us = ts_us;
    struct capture_stats capture;
    capture_get_stats(pipeline->source, &capture);
    const struct pipeline_options *options = pipeline->options;
    /* What stops the capture itself comes first: a down link is no "ok" */
    char health[HEALTH_TEXT_MAX + 128];
    const char *problem = capture_input_problem(pipeline->source);
    snprintf(health, sizeof health, "%s%s%s", problem ? problem : "",
             problem && pipeline->health.text[0] ? "; " : "", pipeline->health.text);
    struct store_sensor_stats stats = {
        .ts_us = ts_us,
        .packets = capture.packets,
        .kernel_drops = capture.kernel_drops,
        .interface_drops = capture.interface_drops,
        .streams = reassembly_concurrent(),
        .sessions = pipeline->summary->sessions_total,
        .source = options->stats_label ? options->stats_label : capture_current_name(pipeline->source),
        .health = health,
    };
    struct mt_store *store = store_writer_lock(pipeline->writer);
    if (store_put_sensor_stats(store, &stats) != STORE_OK)
        fprintf(stderr, "mailtap: %s\n", store_error(store));
    store_writer_unlock(pipeline->writer);
}

/* False with a message in err. */
static bool configure_store(struct pipeline *pipeline, char *err, size_t errlen)
{
    const struct pipeline_options *options = pipeline->options;
    if (options->bulk_load &&
        store_set_bulk_load(pipeline->store, options->defer_indexes) != STORE_OK) {
        snprintf(err, errlen, "%s", store_error(pipeline->store));
        return false;
    }
    if (options->batch_sessions > 0 || options->batch_ms > 0)
        store_set_batch(pipeline->store,
                        options->batch_sessions > 0 ? options->batch_sessions : STORE_BATCH_SESSIONS,
                        options->batch_ms > 0 ? options->batch_ms : STORE_BATCH_MS);
    return true;
}

/* Opens the database and starts its writer thread. False with a message in err. */
static bool open_store(struct pipeline *pipeline, char *err, size_t errlen)
{
    pipeline->store = pipeline->options->bulk_load && pipeline->options->defer_indexes
                      ? store_open_for_load(pipeline->options->db_path, err, errlen)
                      : store_open(pipeline->options->db_path, true, err, errlen);
    if (!pipeline->store)
        return false;
    if (configure_store(pipeline, err, errlen))
        pipeline->writer = store_writer_start(pipeline->store, err, errlen);
    if (!pipeline->writer) {
        store_close(pipeline->store);
        pipeline->store = NULL;
        return false;
    }
    struct stat st;
    bool known = stat(pipeline->options->db_path, &st) == 0;
    pipeline->db_dev = known ? st.st_dev : 0;
    pipeline->db_ino = known ? st.st_ino : 0;
    return true;
}

/* Writes what is queued, stops the writer and closes the database (checkpoint: leaving
 * the write-ahead log empty). False when a write failed that was not reported yet (it is
 * printed here). */
static bool close_store(struct pipeline *pipeline, bool checkpoint)
{
    if (!pipeline->store)
        return true;
    char message[512];
    bool ok = store_writer_stop(pipeline->writer, message, sizeof message, NULL) == STORE_OK;
    pipeline->writer = NULL;
    if (!ok && !pipeline->store_failed)
        fprintf(stderr, "mailtap: %s\n", message);
    if (ok && store_finish_bulk_load(pipeline->store) != STORE_OK) {
        fprintf(stderr, "mailtap: %s\n", store_error(pipeline->store));
        ok = false;
    }
    if (ok && checkpoint && store_checkpoint(pipeline->store) != STORE_OK) {
        fprintf(stderr, "mailtap: %s\n", store_error(pipeline->store));
        ok = false;
    }
    pipeline->summary->sessions_stored += store_sessions_committed(pipeline->store);
    store_close(pipeline->store);
    pipeline->store = NULL;
    return ok || pipeline->store_failed;
}

/* SIGHUP: the file may have been moved away (rotation). The old store is committed and
 * closed FIRST: its -wal and -shm files are named after the path, and a new database at
 * the same path must not pick them up. Closing checkpoints everything into the moved
 * file. If the path cannot be opened, sessions are counted as store errors until it can
 * (keep_store_alive() tries again, and so does the next SIGHUP). why: for the messages. */
static void reopen_store(struct pipeline *pipeline, const char *why)
{
    char err[512];
    bool was_failed = pipeline->store_failed;
    const char *path = pipeline->options->db_path;
    close_store(pipeline, !pipeline->store_failed);
    struct stat st;
    if (stat(path, &st) < 0 && errno == ENOENT) {
        /* Moved away: its emptied -wal and -shm, still named after the path, must not
         * be mistaken for the new database's. */
        char side[4096];
        snprintf(side, sizeof side, "%s-wal", path);
        unlink(side);
        snprintf(side, sizeof side, "%s-shm", path);
        unlink(side);
    }
    pipeline->store_failed = !open_store(pipeline, err, sizeof err);
    uint64_t lost = pipeline->summary->sessions_total - pipeline->sessions_at_failure;
    if (pipeline->store_failed)
        fprintf(stderr, "mailtap: %s: cannot open the database (sessions are not stored; %llu "
                "decoded since the failure lost; tried again within a minute, and at SIGHUP):"
                " %s\n", why,
                (unsigned long long)lost, err);
    else if (was_failed)
        fprintf(stderr, "mailtap: %s: database open again, storing resumes (%llu session%s "
                "decoded meanwhile not stored, besides the batch rolled back): %s\n", why,
                (unsigned long long)lost, lost == 1 ? "" : "s",
                pipeline->options->db_path);
    else
        fprintf(stderr, "mailtap: %s: database reopened: %s\n", why, pipeline->options->db_path);
    if (pipeline->store_failed && !was_failed) {   /* SIGHUP to a path it cannot open */
        pipeline->sessions_at_failure = pipeline->summary->sessions_total;
        pipeline->store_retry_wait_us = STORE_RETRY_FIRST_US;
        pipeline->store_retry_us = pipeline->last_tick_us + STORE_RETRY_FIRST_US;
    }
}

/* A sensor's database: opened again 5 s after it failed (a full disk since freed), then
 * after twice as long each time up to a minute; and at once when its file was deleted or
 * replaced under it. A read (its input can be read again) reports and stores no more. */
static void keep_store_alive(struct pipeline *pipeline, int64_t now_us)
{
    if (pipeline->options->bulk_load || !pipeline->options->reopen_requested)
        return;
    if (pipeline->store_failed) {
        if (now_us >= pipeline->store_retry_us) {
            int64_t wait = pipeline->store_retry_wait_us * 2;
            pipeline->store_retry_wait_us = wait < STORE_RETRY_US ? wait : STORE_RETRY_US;
            pipeline->store_retry_us = now_us + pipeline->store_retry_wait_us;
            reopen_store(pipeline, "retrying after the database error");
        }
        return;
    }
    if (now_us < pipeline->path_check_us)
        return;
    pipeline->path_check_us = now_us + STORE_PATH_CHECK_US;
    struct stat st;
    if (stat(pipeline->options->db_path, &st) == 0 && st.st_dev == pipeline->db_dev &&
        st.st_ino == pipeline->db_ino)
        return;
    reopen_store(pipeline, "the database file was deleted or replaced under the sensor"
                           " (sessions would go to a file no one can read)");
}

static int64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The live size against --max-db-mb, times pct/100; false when unknown. */
static bool size_over(struct pipeline *pipeline, int pct)
{
    int64_t max = pipeline->options->max_db_bytes, live = 0;
    if (max <= 0 || pipeline->store_failed)
        return false;
    struct mt_store *store = store_writer_lock(pipeline->writer);
    bool known = store_live_bytes(store, &live) == STORE_OK;
    store_writer_unlock(pipeline->writer);
    return known && live > max / 100 * pct;
}

static bool over_size(struct pipeline *pipeline)
{
    return size_over(pipeline, 100);
}

/* Past the limit by half, new sessions are dropped (counted, said) until retention has
 * brought it back under the limit itself. */
static void check_size_limit(struct pipeline *pipeline)
{
    struct pipeline_summary *summary = pipeline->summary;
    if (!pipeline->over_limit && size_over(pipeline, OVER_LIMIT_PCT)) {
        pipeline->over_limit = true;
        pipeline->dropped_at_start = summary->dropped_over_limit;
        fprintf(stderr, "mailtap: the database is over --max-db-mb by half: sessions arrive"
                " faster than retention deletes them; new sessions are not stored until it is"
                " under the limit again\n");
    } else if (pipeline->over_limit && !over_size(pipeline)) {
        pipeline->over_limit = false;
        uint64_t dropped = summary->dropped_over_limit - pipeline->dropped_at_start;
        fprintf(stderr, "mailtap: the database is under --max-db-mb again: storing resumes (%llu"
                " session%s not stored meanwhile)\n", (unsigned long long)dropped,
                dropped == 1 ? "" : "s");
    }
}

/* Retention: a few small batches per tick (all: until nothing is left to delete). Sessions
 * still queued for the writer are not seen: the next tick (or the final one) gets them. */
static void prune(struct pipeline *pipeline, int64_t now_us, bool all)
{
    const struct pipeline_options *options = pipeline->options;
    if ((options->keep_days <= 0 && options->max_db_bytes <= 0) || pipeline->store_failed ||
        now_us < pipeline->prune_after_us)
        return;
    int64_t older_than = options->keep_days > 0
                             ? now_us - (int64_t)options->keep_days * 86400 * 1000000 : 0;
    int64_t started = monotonic_us();
    for (int i = 0;; i++) {
        long deleted = 0;
        struct mt_store *store = store_writer_lock(pipeline->writer);
        bool pruned = store_prune(store, older_than, options->max_db_bytes, PRUNE_ROWS,
                                  &deleted) == STORE_OK;
        if (!pruned)
            fprintf(stderr, "mailtap: retention: %s (trying again in a minute)\n",
                    store_error(store));
        store_writer_unlock(pipeline->writer);
        if (!pruned) {
            pipeline->prune_after_us = now_us + 60LL * 1000000;
            return;
        }
        pipeline->summary->sessions_pruned += (uint64_t)deleted;
        if (deleted < PRUNE_ROWS)   /* nothing more is due now */
            break;
        /* past the few calls a tick takes: on only while the database is over its limit,
         * and for a quarter of a second at most */
        if (!all && i + 1 >= PRUNE_BUDGET_CALLS &&
            (!over_size(pipeline) || monotonic_us() - started > PRUNE_OVER_BUDGET_US))
            break;
    }
    check_size_limit(pipeline);
}

/* Once a second (capture time): timers, drops, health, retention, SIGHUP. */
static void tick(struct pipeline *pipeline, int64_t now_us)
{
    reassembly_tick(now_us);
    attempt_limit_flush(&pipeline->attempts, now_us, false, on_attempt_summary, pipeline);
    if (pipeline->dns)
        dns_watch_tick(pipeline->dns, now_us);
    struct capture_stats capture;
    capture_get_stats(pipeline->source, &capture);
    uint64_t drops = capture.kernel_drops + capture.interface_drops;
    if (drops > pipeline->drops_seen) {
        pipeline->drops_seen = drops;
        pipeline->drop_epoch++;
    }
    if (health_tick(&pipeline->health, now_us, drops))
        fprintf(stderr, "mailtap: capture health: %s\n",
                pipeline->health.text[0] ? pipeline->health.text : "ok again");
    pipeline->last_tick_us = now_us;
    prune(pipeline, now_us, false);
    volatile sig_atomic_t *reopen = pipeline->options->reopen_requested;
    if (reopen && *reopen) {
        *reopen = 0;
        reopen_store(pipeline, "SIGHUP");
    }
    keep_store_alive(pipeline, now_us);
}

/* Returns the time of the last packet. */
static int64_t run_loop(struct pipeline *pipeline, struct capture_source *source)
{
    struct pipeline_summary *summary = pipeline->summary;
    struct capture_packet packet;
    int stats_s = pipeline->options->stats_interval_s > 0 ? pipeline->options->stats_interval_s
                                                          : STATS_INTERVAL_S;
    int64_t next_tick = 0, next_stats = 0, last_ts = 0;
    const char *file = NULL;
    int rc;
    while ((rc = capture_next(source, &packet)) != CAPTURE_END) {
        if (rc == CAPTURE_ERROR) {
            fprintf(stderr, "mailtap: warning: %s\n", capture_error(source));
            summary->input_errors++;
            continue;
        }
        if (rc == CAPTURE_NOTICE) {
            fprintf(stderr, "mailtap: %s\n", capture_error(source));
            continue;
        }
        if (rc == CAPTURE_PACKET) {
            summary->packets++;
            summary->bytes += packet.caplen;
            const char *name = capture_current_name(source);
            if (last_ts > 0 && packet.ts_us - last_ts >= MT_REPLY_WAIT_US && name != file)
                pipeline->input_gap_us = last_ts;
            file = name;
            if (packet.ts_us > last_ts)   /* the end is the latest time seen, as for reassembly */
                last_ts = packet.ts_us;
            struct ip_frame frame;
            int found = link_find_ip(packet.dlt, packet.frame, packet.caplen, &frame);
            if (found > 0)
                reassembly_ip_packet(&frame, packet.ts_us);
            else if (found == 0)
                summary->non_ip_frames++;
            else
                summary->bad_frames++;
        }
        if (packet.ts_us >= next_tick) {
            tick(pipeline, packet.ts_us);
            next_tick = packet.ts_us + TICK_INTERVAL_US;
        }
        if (packet.ts_us >= next_stats) {
            write_sensor_stats(pipeline, packet.ts_us);
            next_stats = packet.ts_us + (int64_t)stats_s * 1000000;
        }
    }
    return last_ts;
}

int pipeline_run(const struct pipeline_options *options, struct capture_source *source,
                 struct pipeline_summary *summary)
{
    char err[512];
    memset(summary, 0, sizeof *summary);
    struct pipeline pipeline = { .options = options, .summary = summary, .source = source };
    health_init(&pipeline.health);
    attempt_limit_init(&pipeline.attempts, options->attempt_rows);
    if (!open_store(&pipeline, err, sizeof err)) {
        fprintf(stderr, "mailtap: %s\n", err);
        return 3;
    }
    if (options->ready) {
        int rc = options->ready(options->ready_ctx);
        if (rc != 0) {
            close_store(&pipeline, false);
            return rc;
        }
    }
    struct reassembly_config config;
    reassembly_config_defaults(&config);
    memset(config.ports, 0, sizeof config.ports);
    for (uint32_t port = 0; port < 65536; port++)
        if (options->port_proto[port] != PIPELINE_NO_PROTO)
            reassembly_config_add_port(&config, (uint16_t)port);
    config.max_streams = options->max_streams;
    /* Handshakes in flight scale with the streams followed (a bigger table is asked for
     * when many connections start at once); ~180 bytes each. */
    if (options->max_streams / 2 > config.max_attempts)
        config.max_attempts = options->max_streams / 2;
    config.idle_timeout_us = options->idle_timeout_us;
    struct reassembly_events events = {
        .ctx = &pipeline,
        .opened = on_opened,
        .data = on_data,
        .closed = on_closed,
        .attempt = on_attempt,
        .datagram = on_datagram,
        .conflict = on_conflict, .reset = on_reset, .fin = on_fin, .snap_cut = on_snap_cut,
    };
    pipeline.dns = dns_watch_new(on_dns_row, &pipeline);
    if (reassembly_start(&config, &events, err, sizeof err) != 0) {
        fprintf(stderr, "mailtap: %s\n", err);
        close_store(&pipeline, false);
        return 3;
    }
    int64_t last_ts = run_loop(&pipeline, source);
    reassembly_finish(0, &summary->reassembly);
    attempt_limit_flush(&pipeline.attempts, last_ts, true, on_attempt_summary, &pipeline);
    if (pipeline.dns) {
        dns_watch_finish(pipeline.dns, last_ts);
        dns_watch_free(pipeline.dns);
    }
    struct capture_stats capture;
    capture_get_stats(source, &capture);
    if (health_finish(&pipeline.health, last_ts, capture.kernel_drops + capture.interface_drops) &&
        pipeline.health.text[0])
        fprintf(stderr, "mailtap: capture health: %s\n", pipeline.health.text);
    write_sensor_stats(&pipeline, last_ts);
    if (!pipeline.store_failed && store_writer_sync(pipeline.writer) == STORE_OK) {
        /* The last tick's retention again, now that every session is written: those
         * still queued then were not seen. */
        pipeline.prune_after_us = 0;
        prune(&pipeline, pipeline.last_tick_us, true);
    }
    if (!close_store(&pipeline, false))
        summary->store_errors++;
    if (summary->store_errors > 0)
        return 3;
    return summary->input_errors > 0 ? 1 : 0;
}

void pipeline_print_summary(const struct pipeline_summary *summary, FILE *out)
{
    const struct reassembly_stats *r = &summary->reassembly;
    uint64_t mail = summary->sessions_total - summary->sessions[MT_PROTO_DNS];
    fprintf(out, "%llu packets, %llu session%s (smtp %llu, pop3 %llu, imap %llu), %llu failed, "
            "%llu DNS lookup%s (%llu failed)",
            (unsigned long long)summary->packets, (unsigned long long)mail, mail == 1 ? "" : "s",
            (unsigned long long)summary->sessions[MT_PROTO_SMTP],
            (unsigned long long)summary->sessions[MT_PROTO_POP3],
            (unsigned long long)summary->sessions[MT_PROTO_IMAP],
            (unsigned long long)summary->failures,
            (unsigned long long)summary->sessions[MT_PROTO_DNS],
            summary->sessions[MT_PROTO_DNS] == 1 ? "" : "s",
            (unsigned long long)summary->dns_failures);
    if (r->streams_evicted)
        fprintf(out, "; %llu streams EVICTED (table full: raise --max-streams)",
                (unsigned long long)r->streams_evicted);
    uint64_t open = r->streams_open_at_end + r->attempts_cut;
    open -= summary->ended_at_end < open ? summary->ended_at_end : open;
    if (open)
        fprintf(out, "; %llu still open at end", (unsigned long long)open);
    if (r->attempts_not_established)
        fprintf(out, "; %llu answered handshake%s never established (spoofed SYNs, lost packets "
                "or a full stream table)", (unsigned long long)r->attempts_not_established,
                r->attempts_not_established == 1 ? "" : "s");
    if (r->snap_truncated)
        fprintf(out, "; %llu packets cut by the snap length", (unsigned long long)r->snap_truncated);
    if (r->ipv6_table_full)
        fprintf(out, "; %llu IPv6 packets dropped (address table full)",
                (unsigned long long)r->ipv6_table_full);
    if (summary->bad_frames)
        fprintf(out, "; %llu malformed frames", (unsigned long long)summary->bad_frames);
    if (r->overlap_conflicts)
        fprintf(out, "; %llu resent TCP segment%s contradicted the first copy (flagged "
                "overlap_conflict)", (unsigned long long)r->overlap_conflicts,
                r->overlap_conflicts == 1 ? "" : "s");
    if (summary->capture_gaps)
        fprintf(out, "; %llu session%s lost packets in the capture (flagged capture_gap)",
                (unsigned long long)summary->capture_gaps, summary->capture_gaps == 1 ? "" : "s");
    if (summary->attempts_folded)   /* each row counts once above: the rest, said */
        fprintf(out, "; %llu more connection attempts counted in %llu summary row%s"
                " (--attempt-rows)", (unsigned long long)summary->attempts_folded,
                (unsigned long long)summary->summary_rows, summary->summary_rows == 1 ? "" : "s");
    if (summary->sessions_pruned)
        fprintf(out, "; %llu old rows pruned (sessions, statistics)", (unsigned long long)summary->sessions_pruned);
    if (summary->dropped_over_limit)
        fprintf(out, "; %llu session%s NOT STORED: the database was over --max-db-mb by half,"
                " retention could not keep up (raise the limit)",
                (unsigned long long)summary->dropped_over_limit,
                summary->dropped_over_limit == 1 ? "" : "s");
    if (summary->input_errors)
        fprintf(out, "; %d input error(s)", summary->input_errors);
    if (summary->store_errors && summary->sessions_stored < summary->sessions_total)
        fprintf(out, "; only %llu of these %llu rows (DNS included) STORED: database error above",
                (unsigned long long)summary->sessions_stored,
                (unsigned long long)summary->sessions_total);
    fputc('\n', out);
}

bool pipeline_default_filter(const struct pipeline_options *options, char *buf, size_t cap)
{
    char ports[3072];
    size_t len = 0;
    for (uint32_t port = 1; port < 65536; port++) {
        if (options->port_proto[port] == PIPELINE_NO_PROTO || port == 53)
            continue;
        int n = snprintf(ports + len, sizeof ports - len, "%stcp port %u", len ? " or " : "",
                         (unsigned)port);
        if (n < 0 || (size_t)n >= sizeof ports - len)
            return false;
        len += (size_t)n;
    }
    const char *sep = len ? " or " : "";
    int n = snprintf(buf, cap, "%s%sport 53 or (vlan and (%s%sport 53))", ports, sep, ports, sep);
    return n > 0 && (size_t)n < cap;
}
