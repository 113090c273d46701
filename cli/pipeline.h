/* pipeline.h — wires the layers for `read` and `capture`: capture → link layer →
 * reassembly → protocol decoders → store. Owns every live session until it is stored. */
#ifndef MAILTAP_PIPELINE_H
#define MAILTAP_PIPELINE_H

#include "capture/source.h"
#include "cli/localnets.h"
#include "protocols/session.h"
#include "reassembly/reassembly.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define PIPELINE_NO_PROTO 0xff
/* A port given without a protocol: the server's first byte tells (connection_open()'s
 * guess); rows with nothing from the server (refused, unanswered) say SMTP. */
#define PIPELINE_GUESS_PROTO 0xfe

struct pipeline_options {
    const char *db_path;
    struct localnets local;
    uint8_t port_proto[65536];   /* enum mt_proto per server port, or PIPELINE_NO_PROTO */
    uint32_t max_streams;
    int64_t idle_timeout_us;
    uint32_t attempt_rows;        /* failed attempts stored one by one per server and
                                     minute; the rest become a summary row. 0: no limit */
    bool quiet;
    /* An unattended sensor: */
    int keep_days;                /* delete sessions older than this; 0: keep all */
    int64_t max_db_bytes;         /* keep the database under this; 0: no limit */
    int stats_interval_s;         /* a sensor_stats row this often (capture time) */
    const char *stats_label;      /* sensor_stats.source; NULL: the interface or file */
    int batch_sessions, batch_ms; /* store batches (store_set_batch); 0: the store's default */
    bool bulk_load;               /* files read once (read): store_set_bulk_load() */
    bool defer_indexes;           /* ... into an empty database, with no console reading it */
    volatile sig_atomic_t *reopen_requested;   /* set (by SIGHUP): reopen the database */
    /* Called once the database is open, before the first packet (capture drops its
     * privileges there); non-zero stops the run with that exit status. */
    int (*ready)(void *ctx);
    void *ready_ctx;
};

struct pipeline_summary {
    uint64_t packets, bytes, non_ip_frames, bad_frames;
    uint64_t sessions[MT_PROTO_COUNT];
    uint64_t sessions_total, failures, store_errors;   /* failures: mail sessions only */
    uint64_t dns_failures;        /* DNS lookups that failed (dns_error, timeout) */
    uint64_t sessions_stored;     /* committed to the database (DNS rows included) */
    uint64_t sessions_pruned, capture_gaps;   /* sessions_pruned: with statistics rows */
    uint64_t ended_at_end;   /* open at the end by libnids, ended by a FIN or RST it left aside */
    uint64_t attempts_folded;     /* failed attempts counted in summary rows, not rows */
    uint64_t dropped_over_limit;  /* not stored: the database was over --max-db-mb by half */
    uint64_t summary_rows;        /* those rows */
    int input_errors;
    struct reassembly_stats reassembly;
};

/* Defaults: db ./mailtap.db, RFC 1918 etc. local, the standard mail ports. */
void pipeline_options_defaults(struct pipeline_options *options);
/* "smtp:2526", or "2526": the protocol read from each server's greeting. False on bad text. */
bool pipeline_options_add_port(struct pipeline_options *options, const char *spec);

/* Runs until the source ends (or capture_stop()); fills summary. Returns 0 when all
 * went well, 1 when some input was bad (warnings printed, the rest processed), 3 when
 * the database could not be opened or written, or what options->ready returned. */
int pipeline_run(const struct pipeline_options *options, struct capture_source *source,
                 struct pipeline_summary *summary);

void pipeline_print_summary(const struct pipeline_summary *summary, FILE *out);

/* The BPF filter for live capture when the user gives none: every TCP port with a
 * protocol (the standard mail ports and each --port) and port 53, with or without a VLAN
 * tag. Returns false when it does not fit in cap. */
bool pipeline_default_filter(const struct pipeline_options *options, char *buf, size_t cap);

#endif
