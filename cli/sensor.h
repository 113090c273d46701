/* sensor.h — what turns the pipeline into an unattended sensor: signals (SIGTERM/SIGINT
 * stop and flush, SIGHUP reopens the database), dropping root once the interface and the
 * database are open, and N capture processes sharing one interface (PACKET_FANOUT). */
#ifndef MAILTAP_SENSOR_H
#define MAILTAP_SENSOR_H

#include "capture/source.h"
#include "cli/pipeline.h"

#include <stdbool.h>

#define SENSOR_WORKERS_MAX 16

struct sensor_options {
    const char *iface;
    struct capture_live_options live;  /* filter, buffer; fanout is set per worker */
    const char *user;       /* drop to this user when root; NULL: do not drop */
    int workers;            /* capture processes; 1: this process */
};

/* SIGINT/SIGTERM stop `source` (the pipeline flushes and returns); SIGHUP sets the
 * options' reopen flag (pointed at here). source may be NULL (signals are then only
 * remembered: a worker parent forwards them). */
void sensor_handle_signals(struct capture_source *source, struct pipeline_options *options);
/* Forget the source (it is about to be closed). */
void sensor_forget_source(void);

/* Makes options->ready drop privileges to user once the database is open (the database
 * files are handed to that user). user NULL: nothing. */
void sensor_drop_privileges_when_ready(struct pipeline_options *options, const char *user);

/* One sensor per database: a lock on DB.lock (created beside it) held for the process's
 * life (its workers share it). False, said on stderr, when another `capture` holds it: two
 * sensors on one database store every session twice. A lock file that cannot be made is
 * only a warning. */
bool sensor_lock_database(const char *db_path);

/* Captures with options->workers processes sharing the interface through one
 * PACKET_FANOUT group, all writing to options' database; forwards SIGTERM/SIGINT/SIGHUP
 * to them and waits. Each prints its own summary, labelled "IFACE#k". Returns the worst
 * exit status. */
int sensor_run_workers(const struct sensor_options *sensor, struct pipeline_options *options);

#endif
