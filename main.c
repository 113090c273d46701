/* main.c — the mailtap command line: read, capture, list, show. Each subcommand parses
 * its own options and hands over to the layer that does the work. */
#include "capture/source.h"
#include "cli/inputs.h"
#include "cli/output.h"
#include "cli/pipeline.h"
#include "cli/privileges.h"
#include "cli/readlog.h"
#include "cli/sensor.h"
#include "protocols/explain.h"
#include "protocols/session.h"
#include "store/store.h"
#include "ui/console.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAILTAP_VERSION "0.1.0"

enum exit_code { EXIT_OK = 0, EXIT_INPUT = 1, EXIT_USAGE = 2, EXIT_DATABASE = 3 };

static const char usage_text[] =
    "usage: mailtap COMMAND [options]\n"
    "\n"
    "  read FILE|DIR... [-d DB] [--ui] [-q] [--local CIDR]... [--port [PROTO:]PORT]...\n"
    "       [--max-streams N] [--attempt-rows N] [--idle-timeout SEC] [--keep-days N]\n"
    "       [--max-db-mb N] [--again]\n"
    "        decode pcap/pcapng files (\"-\" = stdin; a directory: the captures in it) into\n"
    "        the database (a file read into it before is skipped unless --again); past N a minute\n"
    "        per server (default 100, 0 = no limit), failed connection attempts become\n"
    "        one summary row (read and capture); -q: silent unless something went wrong\n"
    "  capture -i IFACE [-d DB] [--ui] [-q] [-B MB] [-Z USER] [--keep-days N] [--max-db-mb N]\n"
    "          [--workers N] [--stats-interval SEC] [--idle-timeout SEC] [--local CIDR]...\n"
    "          [--port [PROTO:]PORT]... [FILTER]\n"
    "        decode live traffic until SIGTERM/Ctrl-C (default filter: mail ports, --port\n"
    "        ports and DNS); SIGHUP reopens the database; root drops to -Z USER (default\n"
    "        mailtap, else nobody) once the interface and database are open\n"
    "  ui [-d DB]\n"
    "        browse the database in the console (? lists the keys)\n"
    "  list [-d DB] [--proto smtp|pop3|imap|dns] [--dir in|out] [--status WORD] [--failed]\n"
    "       [--grep TEXT] [--since TIME] [--until TIME] [--limit N] [--sort time|status|user]\n"
    "       [--finding WORD] [--oldest-first] [--json]\n"
    "        print sessions, newest first (TIME: 2026-01-07T16:54:00 UTC, epoch seconds, or -15m, -2h, -1d: before now)\n"
    "  show ID [-d DB] [--json]\n"
    "        print one session with its transcript\n"
    "  trace MESSAGE-ID|ADDRESS [-d DB] [--json]\n"
    "        the hops of one message (submission, relay, delivery failure) in time order\n"
    "  stats [-d DB] [--since TIME] [--json]\n"
    "        capture statistics per source: packets, drops, streams, sessions per minute,\n"
    "        capture-health warnings\n"
    "\n"
    "  The database defaults to ./mailtap.db. Exit status: 0 ok, 1 some input was bad\n"
    "  (the rest was processed), a read was interrupted or a trace found nothing, 2 usage\n"
    "  error, 3 database error.\n";

/* After a usage error, a pointer to the help rather than all of it: forty lines of usage
 * scrolled the one line that said what was wrong off the screen. */
static void usage_hint(void)
{
    fputs("Try 'mailtap --help' for the commands and their options.\n", stderr);
}

/* An option getopt knows (the tables are shared) that this command does not take, or
 * one getopt already called unrecognized ('?'). */
static void option_not_taken(const char *command, int opt, const struct option *options,
                             int index)
{
    if (opt == '?')
        return;
    if (index >= 0)
        fprintf(stderr, "mailtap: %s takes no --%s\n", command, options[index].name);
    else
        fprintf(stderr, "mailtap: %s takes no -%c\n", command, opt);
}

static void usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "mailtap: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    usage_hint();
}

/* A word left after the options of a command that takes none: an error, not ignored (a
 * "--since 2026-11-28 12:14" filtered from midnight and said nothing of the "12:14"). */
static bool no_arguments_left(const char *command, int argc, char **argv)
{
    if (optind >= argc)
        return true;
    char what[160];
    snprintf(what, sizeof what, "%s takes no argument but options: %%s (a date and a time are one"
             " word: 2026-11-28T12:14:00)", command);
    usage_error(what, argv[optind]);
    return false;
}

/* Options shared by read and capture. Returns 1 when handled, 0 when not ours, -1 on
 * a bad value. */
enum { OPT_LOCAL = 1000, OPT_PORT, OPT_MAX_STREAMS, OPT_PROTO, OPT_DIR, OPT_STATUS, OPT_FAILED,
       OPT_GREP, OPT_SINCE, OPT_UNTIL, OPT_LIMIT, OPT_JSON, OPT_OLDEST, OPT_IDLE, OPT_UI, OPT_SORT,
       OPT_AGAIN,
       OPT_FINDING, OPT_KEEP_DAYS, OPT_MAX_DB_MB, OPT_STATS_INTERVAL, OPT_WORKERS,
       OPT_ATTEMPT_ROWS };

static bool local_overridden;

/* A whole decimal number within [min, max]: "1m", "x", "" and "2x" are not numbers. */
static bool number_in(const char *arg, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long n = strtoll(arg, &end, 10);
    if (end == arg || *end || errno == ERANGE || n < min || n > max)
        return false;
    *out = n;
    return true;
}

static int decode_option(struct pipeline_options *options, int opt, const char *arg)
{
    switch (opt) {
    case 'd':
        options->db_path = arg;
        return 1;
    case OPT_LOCAL:
        /* The first --local replaces the defaults: the admin knows the networks. */
        if (!local_overridden) {
            options->local.count = 0;
            local_overridden = true;
        }
        if (!localnets_add(&options->local, arg)) {
            usage_error("bad --local network: %s", arg);
            return -1;
        }
        return 1;
    case OPT_PORT:
        if (!pipeline_options_add_port(options, arg)) {
            usage_error("bad --port (expected [smtp|pop3|imap:]PORT): %s", arg);
            return -1;
        }
        return 1;
    case OPT_MAX_STREAMS: {
        long long n;
        if (!number_in(arg, 64, 4000000, &n)) {
            usage_error("--max-streams must be 64..4000000: %s", arg);
            return -1;
        }
        options->max_streams = (uint32_t)n;
        return 1;
    }
    case OPT_ATTEMPT_ROWS: {
        long long n;
        if (!number_in(arg, 0, 1000000, &n)) {
            usage_error("--attempt-rows takes a number of rows a minute (0 = no limit): %s", arg);
            return -1;
        }
        options->attempt_rows = (uint32_t)n;
        return 1;
    }
    case OPT_IDLE: {
        long long n;   /* "1m" was one second, "x" never: seconds only, as said */
        if (!number_in(arg, 0, 366LL * 86400, &n)) {
            usage_error("--idle-timeout takes seconds (0 = never): %s", arg);
            return -1;
        }
        options->idle_timeout_us = n * 1000000;
        return 1;
    }
    case OPT_KEEP_DAYS: {
        long long n;
        if (!number_in(arg, 1, 100000, &n)) {
            usage_error("--keep-days takes a number of days (1 or more): %s", arg);
            return -1;
        }
        options->keep_days = (int)n;
        return 1;
    }
    case OPT_MAX_DB_MB: {
        long long n;
        if (!number_in(arg, 1, 1000000000LL, &n)) {
            usage_error("--max-db-mb takes a size in MiB (1 or more): %s", arg);
            return -1;
        }
        options->max_db_bytes = n * 1024 * 1024;
        return 1;
    }
    case OPT_STATS_INTERVAL: {
        long long n;
        if (!number_in(arg, 1, 3600, &n)) {
            usage_error("--stats-interval takes seconds (1..3600): %s", arg);
            return -1;
        }
        options->stats_interval_s = (int)n;
        return 1;
    }
    default:
        return 0;
    }
}

static const struct option decode_long_options[] = {
    { "db", required_argument, NULL, 'd' },
    { "local", required_argument, NULL, OPT_LOCAL },
    { "port", required_argument, NULL, OPT_PORT },
    { "max-streams", required_argument, NULL, OPT_MAX_STREAMS },
    { "idle-timeout", required_argument, NULL, OPT_IDLE },
    { "attempt-rows", required_argument, NULL, OPT_ATTEMPT_ROWS },
    { "interface", required_argument, NULL, 'i' },
    { "buffer", required_argument, NULL, 'B' },
    { "quiet", no_argument, NULL, 'q' },
    { "ui", no_argument, NULL, OPT_UI },
    { "keep-days", required_argument, NULL, OPT_KEEP_DAYS },
    { "max-db-mb", required_argument, NULL, OPT_MAX_DB_MB },
    { "stats-interval", required_argument, NULL, OPT_STATS_INTERVAL },
    { "workers", required_argument, NULL, OPT_WORKERS },
    { "user", required_argument, NULL, 'Z' },
    { "again", no_argument, NULL, OPT_AGAIN },
    { NULL, 0, NULL, 0 },
};

/* `--ui`: the decoder runs in a child process writing the database (WAL lets the console
 * read while it writes); the console runs here and shows sessions as they are stored.
 * The child's messages go to DB.log so they do not scribble over the console; they are
 * printed once the console closes. Returns the decoder's exit status. */
static int run_with_console(struct pipeline_options *options, struct capture_source *source,
                            const char *label, struct readlog *readlog)
{
    char log_path[4096];
    snprintf(log_path, sizeof log_path, "%s.log", options->db_path);
    /* The database must exist before the console opens it. */
    char err[512];
    struct mt_store *store = store_open(options->db_path, true, err, sizeof err);
    if (!store) {
        fprintf(stderr, "mailtap: %s\n", err);
        return EXIT_DATABASE;
    }
    store_close(store);
    fflush(NULL);
    pid_t child = fork();
    if (child < 0) {
        perror("mailtap: fork");
        return EXIT_INPUT;
    }
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);   /* never outlive the console (kept past -Z) */
        if (getppid() == 1)
            _exit(EXIT_INPUT);
        if (!freopen(log_path, "w", stderr) || !freopen("/dev/null", "w", stdout))
            _exit(EXIT_INPUT);
        sensor_handle_signals(source, options);
        signal(SIGINT, SIG_IGN);   /* Ctrl-C belongs to the console; it ends us with SIGTERM */
        struct pipeline_summary summary;
        int rc = pipeline_run(options, source, &summary);
        if (readlog)   /* the console may end the read (SIGTERM) before the files do */
            readlog_finish(readlog, options->db_path,
                           (rc == EXIT_OK || rc == EXIT_INPUT) && !capture_stopped(source),
                           summary.sessions_stored == 0);
        fprintf(stderr, "mailtap: %s: ", options->db_path);
        pipeline_print_summary(&summary, stderr);
        fflush(stderr);
        _exit(rc);
    }
    struct ui_live live = { .label = label, .poll_ms = 1000, .source = child,
                            .log_path = log_path };
    int ui_rc = ui_run(options->db_path, &live);
    kill(child, SIGTERM);
    int status = 0;
    waitpid(child, &status, 0);
    /* The console's connection kept the write-ahead log from being checkpointed when the
     * decoder closed; the last connection out empties and removes it. */
    if ((store = store_open(options->db_path, true, err, sizeof err))) {
        store_checkpoint(store);
        store_close(store);
    }
    FILE *log = fopen(log_path, "r");
    if (log) {
        char line[1024];
        while (fgets(line, sizeof line, log))
            fputs(line, stderr);
        fclose(log);
        unlink(log_path);
    }
    if (ui_rc != 0)
        return ui_rc == 1 ? EXIT_DATABASE : EXIT_USAGE;
    return WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_INPUT;
}

static int read_inputs(struct pipeline_options *options, struct read_inputs *inputs,
                       bool with_console, bool again);

static int command_read(int argc, char **argv)
{
    static struct pipeline_options options;
    pipeline_options_defaults(&options);
    options.bulk_load = true;
    bool with_console = false, again = false;
    int opt, index;   /* index: the long option matched, -1 for a short one */
    while ((index = -1, opt = getopt_long(argc, argv, "d:q", decode_long_options, &index)) != -1) {
        if (opt == 'q') {
            options.quiet = true;
            continue;
        }
        if (opt == OPT_AGAIN) {
            again = true;
            continue;
        }
        if (opt == OPT_UI) {
            with_console = true;
            continue;
        }
        int handled = decode_option(&options, opt, optarg);
        if (handled < 0)
            return EXIT_USAGE;
        if (handled == 0) {
            option_not_taken("read", opt, decode_long_options, index);
            usage_hint();
            return EXIT_USAGE;
        }
    }
    /* The console's queries need the indexes while the read goes on, and so does retention
     * (it looks for the oldest sessions at every tick). */
    options.defer_indexes = !with_console && !options.keep_days && !options.max_db_bytes;
    if (optind >= argc) {
        usage_error("%s", "read needs at least one capture file");
        return EXIT_USAGE;
    }
    struct read_inputs inputs;
    if (!inputs_expand(&inputs, argv + optind, argc - optind, options.quiet))
        return EXIT_INPUT;
    int rc = read_inputs(&options, &inputs, with_console, again);
    if (inputs.problem && rc == EXIT_OK)
        rc = EXIT_INPUT;   /* a directory held nothing to read: said why */
    inputs_free(&inputs);
    return rc;
}

/* read's work once its arguments are parsed and its directories listed. */
static int read_inputs(struct pipeline_options *options, struct read_inputs *inputs,
                       bool with_console, bool again)
{
    const char **files = inputs->files;
    int file_count = inputs->count;
    if (file_count == 0) {
        fprintf(stderr, "mailtap: nothing to read\n");
        return EXIT_INPUT;
    }
    int stdin_count = 0;
    for (int i = 0; i < file_count; i++)
        stdin_count += strcmp(files[i], "-") == 0;
    if (stdin_count > 1) {
        usage_error("%s", "standard input (-) can be read once only");
        return EXIT_USAGE;
    }
    struct readlog readlog;
    readlog_lock_database(options->db_path);
    if (!readlog_begin(&readlog, options->db_path, files, &file_count, again, options->quiet,
                       options->defer_indexes))
        return EXIT_DATABASE;
    if (file_count == 0) {
        if (!options->quiet)
            fprintf(stderr, "mailtap: nothing new to read\n");
        readlog_finish(&readlog, options->db_path, false, false);
        return EXIT_OK;
    }
    if (capture_sort_files_by_time(files, file_count) && !options->quiet)
        fprintf(stderr, "mailtap: note: the files are merged in time order (one timeline),"
                " starting with %s\n", files[0]);
    struct capture_source *source = capture_open_files(files, file_count);
    if (!source) {
        fprintf(stderr, "mailtap: out of memory\n");
        readlog_finish(&readlog, options->db_path, false, true);
        return EXIT_INPUT;
    }
    /* One run, one timeline: its statistics rows carry one name (running totals under each
     * file's name read as that file's own). */
    static char label[4200];
    if (file_count > 1) {
        snprintf(label, sizeof label, "%s (+%d more file%s)", files[0], file_count - 1,
                 file_count == 2 ? "" : "s");
        options->stats_label = label;
    }
    /* A file is taken in completely when the read was not stopped (a signal, the console
     * closed) and the database took its sessions: a file that was cut short or held
     * garbage was still read to its end. */
    if (with_console) {
        int rc = run_with_console(options, source, file_count > 1 ? label : files[0],
                                  &readlog);
        readlog_finish(&readlog, options->db_path, false, false);   /* the decoder's did */
        capture_close(source);
        return rc;
    }
    sensor_handle_signals(source, options);
    struct pipeline_summary summary;
    int rc = pipeline_run(options, source, &summary);
    sensor_forget_source();
    bool interrupted = capture_stopped(source);
    readlog_finish(&readlog, options->db_path, (rc == EXIT_OK || rc == EXIT_INPUT) && !interrupted,
                   summary.sessions_stored == 0);
    capture_close(source);
    bool never_opened = rc == EXIT_DATABASE && summary.packets == 0;   /* said why already */
    /* Stopped by a signal: what was read is stored, but not all of the input was: a
     * script must be able to tell (1, as for bad input). */
    if (interrupted && rc == EXIT_OK)
        rc = EXIT_INPUT;
    if ((!options->quiet || rc != 0) && !never_opened) {
        fprintf(rc == 0 ? stdout : stderr, "mailtap: %s: ", options->db_path);
        pipeline_print_summary(&summary, rc == 0 ? stdout : stderr);
    }
    if (interrupted)
        fprintf(stderr, "mailtap: interrupted: the rest of the input was not read (sessions"
                " still open were stored as they were)\n");
    return rc;
}

static int command_capture(int argc, char **argv)
{
    static struct pipeline_options options;
    pipeline_options_defaults(&options);
    struct sensor_options sensor = { .workers = 1, .live = { .buffer_mb = 64 } };
    const char *user = NULL;
    bool with_console = false;
    int opt;
    int index;   /* the long option matched, -1 for a short one */
    while ((index = -1,
            opt = getopt_long(argc, argv, "d:i:B:qZ:", decode_long_options, &index)) != -1) {
        char *end;
        switch (opt) {
        case OPT_UI:
            with_console = true;
            continue;
        case 'i':
            sensor.iface = optarg;
            continue;
        case 'B':
            sensor.live.buffer_mb = (int)strtol(optarg, &end, 10);
            if (*end || sensor.live.buffer_mb < 1 || sensor.live.buffer_mb > 2047) {
                usage_error("-B takes the kernel buffer in MiB (1..2047): %s", optarg);
                return EXIT_USAGE;
            }
            continue;
        case 'q':
            options.quiet = true;
            continue;
        case 'Z':
            user = optarg;
            continue;
        case OPT_WORKERS:
            sensor.workers = (int)strtol(optarg, &end, 10);
            if (*end || sensor.workers < 1 || sensor.workers > SENSOR_WORKERS_MAX) {
                usage_error("--workers takes 1..16: %s", optarg);
                return EXIT_USAGE;
            }
            continue;
        default:
            break;
        }
        int handled = decode_option(&options, opt, optarg);
        if (handled < 0)
            return EXIT_USAGE;
        if (handled == 0) {
            option_not_taken("capture", opt, decode_long_options, index);
            usage_hint();
            return EXIT_USAGE;
        }
    }
    if (!sensor.iface) {
        usage_error("%s", "capture needs -i IFACE");
        return EXIT_USAGE;
    }
    if (with_console && sensor.workers > 1) {
        usage_error("%s", "--ui runs one capture process: use --workers with `mailtap ui` "
                          "from another terminal");
        return EXIT_USAGE;
    }
    /* The remaining words form the BPF filter, as with tcpdump; by default every port
     * with a protocol (--port included) and DNS. */
    static char filter[4096];
    filter[0] = '\0';
    for (int i = optind; i < argc; i++) {
        if (strlen(filter) + strlen(argv[i]) + 2 >= sizeof filter) {
            usage_error("%s", "filter too long");
            return EXIT_USAGE;
        }
        if (filter[0])
            strcat(filter, " ");
        strcat(filter, argv[i]);
    }
    if (!filter[0] && !pipeline_default_filter(&options, filter, sizeof filter)) {
        usage_error("%s", "too many --port options for the default filter: give a FILTER");
        return EXIT_USAGE;
    }
    char filter_err[512];
    if (!capture_filter_valid(filter, filter_err, sizeof filter_err)) {
        usage_error("bad filter: %s", filter_err);
        return EXIT_USAGE;
    }
    sensor.live.filter = filter;
    /* Like tcpdump: root gives up root once the interface and the database are open. */
    sensor.user = user ? user : geteuid() == 0 ? privileges_default_user() : NULL;
    if (sensor.user && geteuid() == 0 && strcmp(sensor.user, "root") != 0 &&
        !getpwnam(sensor.user)) {   /* before a database is made that nobody could use */
        usage_error("-Z %s: no such user", sensor.user);
        return EXIT_USAGE;
    }
    if (!sensor_lock_database(options.db_path))
        return EXIT_DATABASE;
    sensor_drop_privileges_when_ready(&options, sensor.user);
    if (sensor.workers > 1) {
        if (!options.quiet)
            fprintf(stderr, "mailtap: capturing on %s with %d workers into %s (Ctrl-C to stop)\n",
                    sensor.iface, sensor.workers, options.db_path);
        return sensor_run_workers(&sensor, &options);
    }
    char err[512];
    struct capture_source *source = capture_open_live(sensor.iface, &sensor.live, err, sizeof err);
    if (!source) {
        fprintf(stderr, "mailtap: %s\n", err);
        return EXIT_INPUT;
    }
    if (with_console) {
        int rc = run_with_console(&options, source, sensor.iface, NULL);
        capture_close(source);
        return rc;
    }
    sensor_handle_signals(source, &options);
    if (!options.quiet)
        fprintf(stderr, "mailtap: capturing on %s into %s (Ctrl-C to stop)\n", sensor.iface,
                options.db_path);
    struct pipeline_summary summary;
    int rc = pipeline_run(&options, source, &summary);
    struct capture_stats stats;
    capture_get_stats(source, &stats);
    sensor_forget_source();
    capture_close(source);
    fprintf(stderr, "mailtap: %s: ", options.db_path);
    pipeline_print_summary(&summary, stderr);
    fprintf(stderr, "mailtap: kernel dropped %llu packets, interface dropped %llu\n",
            (unsigned long long)stats.kernel_drops, (unsigned long long)stats.interface_drops);
    return rc;
}

/* A --since/--until: output_parse_time(), relative times ("-1d") to the wall clock;
 * -1 when it is not a time. */
static int64_t parse_time(const char *text)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t us;
    if (!text[0] || !output_parse_time(text, (int64_t)now.tv_sec * 1000000, &us))
        return -1;
    return us < 0 ? 0 : us;   /* "-36500d": before 1970, every session */
}

/* A read into the database that was killed leaves it without its indexes: every answer is
 * still right, only slow on a big one, and the user should know why and what mends it. */
static void note_missing_indexes(struct mt_store *store, const char *db_path)
{
    if (store_indexes_missing(store))
        fprintf(stderr, "mailtap: note: %s lacks its indexes (a read into it was interrupted, "
                "or is still going on): queries scan every row until the next read or capture "
                "into it makes them\n", db_path);
}

/* The database a reading command works on; NULL (message printed) when it cannot be read. */
static struct mt_store *open_for_reading(const char *db_path)
{
    char err[512];
    struct mt_store *store = store_open(db_path, false, err, sizeof err);
    if (!store)
        fprintf(stderr, "mailtap: %s\n", err);
    else
        note_missing_indexes(store, db_path);
    return store;
}

struct list_context {
    bool json;
    long rows;
};

static int print_listed_session(void *ctx, struct mt_session *session)
{
    struct list_context *list = ctx;
    if (list->json)
        output_json(stdout, session);
    else
        output_table_row(stdout, session);
    list->rows++;
    session_free(session);
    return 0;
}

static const struct option list_long_options[] = {
    { "db", required_argument, NULL, 'd' },
    { "proto", required_argument, NULL, OPT_PROTO },
    { "dir", required_argument, NULL, OPT_DIR },
    { "status", required_argument, NULL, OPT_STATUS },
    { "failed", no_argument, NULL, OPT_FAILED },
    { "grep", required_argument, NULL, OPT_GREP },
    { "since", required_argument, NULL, OPT_SINCE },
    { "until", required_argument, NULL, OPT_UNTIL },
    { "limit", required_argument, NULL, OPT_LIMIT },
    { "oldest-first", no_argument, NULL, OPT_OLDEST },
    { "sort", required_argument, NULL, OPT_SORT },
    { "finding", required_argument, NULL, OPT_FINDING },
    { "json", no_argument, NULL, OPT_JSON },
    { NULL, 0, NULL, 0 },
};

static int command_list(int argc, char **argv)
{
    const char *db_path = "mailtap.db";
    struct store_filter filter;
    store_filter_init(&filter);
    struct list_context list = { 0 };
    int opt;
    while ((opt = getopt_long(argc, argv, "d:", list_long_options, NULL)) != -1) {
        /* one value each: a second one silently replaced the first */
        if ((opt == OPT_PROTO && filter.proto >= 0) || (opt == OPT_DIR && filter.direction >= 0) ||
            (opt == OPT_STATUS && filter.status >= 0)) {
            usage_error("--proto, --dir and --status are given once each (again: %s)", optarg);
            return EXIT_USAGE;
        }
        /* Words are matched in any case: "--status AUTH_FAILED" as "auth_failed". */
        if (opt == OPT_PROTO || opt == OPT_DIR || opt == OPT_STATUS || opt == OPT_SORT ||
            opt == OPT_FINDING)
            for (char *p = optarg; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        switch (opt) {
        case 'd': db_path = optarg; break;
        case OPT_PROTO:
            filter.proto = proto_from_name(optarg);
            if (filter.proto < 0) {
                usage_error("unknown protocol: %s", optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_DIR:
            if (strcmp(optarg, "in") == 0)
                filter.direction = MT_INBOUND;
            else if (strcmp(optarg, "out") == 0)
                filter.direction = MT_OUTBOUND;
            else {
                usage_error("--dir takes in or out, not %s", optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_STATUS:
            filter.status = status_from_name(optarg);
            if (filter.status == MT_STATUS_UNKNOWN && strcmp(optarg, "unknown") != 0) {
                usage_error("unknown status word: %s (see README: Status words)", optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_FAILED: filter.failed_only = true; break;
        case OPT_GREP: filter.grep = optarg; break;
        case OPT_SINCE:
        case OPT_UNTIL: {
            int64_t us = parse_time(optarg);
            if (us < 0) {
                usage_error("bad time: %s", optarg);
                return EXIT_USAGE;
            }
            if (opt == OPT_SINCE)
                filter.since_us = us;
            else   /* 0 means no bound there: before the epoch is before 1 µs after it */
                filter.until_us = us > 0 ? us : 1;
            break;
        }
        case OPT_LIMIT: {
            char *end;
            filter.limit = strtol(optarg, &end, 10);
            if (*end || end == optarg || filter.limit < 0) {
                usage_error("--limit takes a number of sessions (0 = no limit): %s", optarg);
                return EXIT_USAGE;
            }
            break;
        }
        case OPT_OLDEST: filter.oldest_first = true; break;
        case OPT_SORT:
            if (strcmp(optarg, "time") == 0)
                filter.order = STORE_ORDER_TIME;
            else if (strcmp(optarg, "status") == 0)
                filter.order = STORE_ORDER_STATUS;
            else if (strcmp(optarg, "user") == 0)
                filter.order = STORE_ORDER_USER;
            else {
                usage_error("--sort takes time, status or user, not %s", optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_FINDING: {
            unsigned bit = 0;
            while (flag_name(bit) && strcmp(flag_name(bit), optarg) != 0)
                bit++;
            if (!flag_name(bit)) {
                usage_error("unknown finding or flag: %s (see README: Security findings)", optarg);
                return EXIT_USAGE;
            }
            filter.flags_any |= 1u << bit;
            break;
        }
        case OPT_JSON: list.json = true; break;
        default:
            usage_hint();
            return EXIT_USAGE;
        }
    }
    if (!no_arguments_left("list", argc, argv))
        return EXIT_USAGE;
    struct mt_store *store = open_for_reading(db_path);
    if (!store)
        return EXIT_DATABASE;
    if (!list.json)
        output_table_header(stdout, filter.proto == MT_PROTO_SMTP ? OUTPUT_VIEW_SMTP
                                    : filter.proto == MT_PROTO_DNS ? OUTPUT_VIEW_DNS
                                    : filter.proto >= 0   ? OUTPUT_VIEW_MAILBOX
                                                          : OUTPUT_VIEW_MIXED);
    int rc = store_query_sessions(store, &filter, print_listed_session, &list);
    if (rc < 0) {
        fprintf(stderr, "mailtap: %s\n", store_error(store));
        store_close(store);
        return EXIT_DATABASE;
    }
    store_close(store);
    return EXIT_OK;
}

static int command_show(int argc, char **argv)
{
    const char *db_path = "mailtap.db";
    bool json = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "d:", list_long_options, NULL)) != -1) {
        if (opt == 'd')
            db_path = optarg;
        else if (opt == OPT_JSON)
            json = true;
        else {
            usage_hint();
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        usage_error("%s", "show needs one session ID (see mailtap list)");
        return EXIT_USAGE;
    }
    char *end;
    long long id = strtoll(argv[optind], &end, 10);
    if (*end != '\0' || id <= 0) {
        usage_error("bad session ID: %s", argv[optind]);
        return EXIT_USAGE;
    }
    struct mt_store *store = open_for_reading(db_path);
    if (!store)
        return EXIT_DATABASE;
    struct mt_session *session = NULL;
    int rc = store_load_session(store, id, &session);
    if (rc != STORE_OK) {
        fprintf(stderr, "mailtap: session %lld: %s\n", id,
                rc == STORE_NOT_FOUND ? "no such session" : store_error(store));
        store_close(store);
        return rc == STORE_NOT_FOUND ? EXIT_INPUT : EXIT_DATABASE;   /* as trace: none found */
    }
    struct store_peers peers = { .count = 0 };
    if (explain_blames_other_sessions(session->status_line, strlen(session->status_line)) &&
        store_peer_sessions(store, session, &peers) != STORE_OK)
        peers = (struct store_peers){ .count = 0 };   /* shown without: the session was asked */
    output_show_peers(stdout, session, &peers, json);
    session_free(session);
    store_close(store);
    return EXIT_OK;
}

struct trace_context {
    bool json;
    const char *key;
};

static void print_hop(void *ctx, struct mt_session *session, enum store_trace_match match)
{
    struct trace_context *trace = ctx;
    if (trace->json)
        output_json_trace_hop(stdout, session, match, trace->key);
    else
        output_trace_hop(stdout, session, match, trace->key);
    session_free(session);
}

/* `mailtap stats`: per source, the newest row of its latest run, and the rows five
 * minutes and a whole run before it for the rates. Rows come newest first. */
#define STATS_SOURCES_MAX 64
#define STATS_RECENT_US (5LL * 60 * 1000000)

struct stats_group {
    char source[128];
    struct store_sensor_stats newest, recent, oldest;
    char health[512];
    bool have_recent;
};

struct stats_context {
    struct stats_group groups[STATS_SOURCES_MAX];
    int count;
};

static int collect_stats(void *ctx, const struct store_sensor_stats *row)
{
    struct stats_context *c = ctx;
    struct stats_group *g = NULL;
    for (int i = 0; i < c->count && !g; i++)
        if (strcmp(c->groups[i].source, row->source) == 0)
            g = &c->groups[i];
    if (!g) {
        if (c->count == STATS_SOURCES_MAX)
            return 0;
        g = &c->groups[c->count++];
        snprintf(g->source, sizeof g->source, "%s", row->source);
        snprintf(g->health, sizeof g->health, "%s", row->health ? row->health : "");
        g->newest = g->recent = g->oldest = *row;
        return 0;
    }
    if (row->run != g->newest.run)
        return 0;   /* an earlier run of the same source */
    g->oldest = *row;
    if (!g->have_recent && row->ts_us <= g->newest.ts_us - STATS_RECENT_US) {
        g->recent = *row;
        g->have_recent = true;
    }
    return 0;
}

/* The interface a `capture --workers` worker's source names ("eth0#2": "eth0"), its
 * length in *len; false for any other source. */
static bool worker_interface(const char *source, size_t *len)
{
    const char *hash = strrchr(source, '#');
    if (!hash || hash == source || !hash[1] || strspn(hash + 1, "0123456789") != strlen(hash + 1))
        return false;
    *len = (size_t)(hash - source);
    return true;
}

/* Is g a worker of the interface named by prefix[0..len)? */
static bool worker_of(const struct stats_group *g, const char *prefix, size_t len)
{
    size_t other;
    return worker_interface(g->source, &other) && other == len &&
           memcmp(g->source, prefix, len) == 0;
}

/* Workers share one interface: the admin's question is the interface's, so after each
 * worker's block comes their sum ("eth0 (2 workers together)"), of the workers of the
 * latest run: those whose last sample is within STATS_WORKERS_APART_US of the newest (a
 * sensor run with more workers before leaves older "#3" rows behind). */
#define STATS_WORKERS_APART_US (10LL * 60 * 1000000)
static void print_worker_totals(struct stats_context *c, bool json)
{
    bool done[STATS_SOURCES_MAX] = { false };
    for (int i = 0; i < c->count; i++) {
        size_t len;
        if (done[i] || !worker_interface(c->groups[i].source, &len))
            continue;
        const char *interface = c->groups[i].source;
        int64_t newest_us = 0;
        for (int j = i; j < c->count; j++) {
            if (worker_of(&c->groups[j], interface, len)) {
                done[j] = true;
                if (c->groups[j].newest.ts_us > newest_us)
                    newest_us = c->groups[j].newest.ts_us;
            }
        }
        struct store_sensor_stats sum = { 0 };
        char source[160], health[1024] = "";
        double recent = 0, run = 0;
        int64_t since_us = INT64_MAX;
        int workers = 0;
        for (int j = i; j < c->count; j++) {
            const struct stats_group *g = &c->groups[j];
            if (!worker_of(g, interface, len) ||
                g->newest.ts_us < newest_us - STATS_WORKERS_APART_US)   /* an earlier run's */
                continue;
            workers++;
            sum.packets += g->newest.packets;
            sum.kernel_drops += g->newest.kernel_drops;
            sum.interface_drops += g->newest.interface_drops;
            sum.streams += g->newest.streams;
            sum.sessions += g->newest.sessions;
            double r = store_sensor_sessions_per_minute(&g->newest, g->have_recent ? &g->recent
                                                                                   : &g->oldest);
            double whole = store_sensor_sessions_per_minute(&g->newest, &g->oldest);
            recent = recent < 0 || r < 0 ? -1 : recent + r;
            run = run < 0 || whole < 0 ? -1 : run + whole;
            if (g->oldest.ts_us < since_us)
                since_us = g->oldest.ts_us;
            if (g->health[0]) {   /* each worker's own warning, named */
                size_t used = strlen(health);
                snprintf(health + used, sizeof health - used, "%s%s: %s", used ? "; " : "",
                         g->source, g->health);
            }
        }
        if (workers < 2)
            continue;
        snprintf(source, sizeof source, "%.*s (%d workers together)", (int)len, interface,
                 workers);
        sum.ts_us = newest_us;
        sum.source = source;
        sum.health = health;
        output_sensor_stats(stdout, &sum, recent, run, since_us, json);
    }
}

static int command_stats(int argc, char **argv)
{
    static const struct option long_options[] = {
        { "db", required_argument, NULL, 'd' },
        { "since", required_argument, NULL, OPT_SINCE },
        { "json", no_argument, NULL, OPT_JSON },
        { NULL, 0, NULL, 0 },
    };
    const char *db_path = "mailtap.db";
    int64_t since = 0;
    bool json = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "d:", long_options, NULL)) != -1) {
        if (opt == 'd') {
            db_path = optarg;
        } else if (opt == OPT_SINCE) {
            since = parse_time(optarg);
            if (since < 0) {
                usage_error("bad time: %s", optarg);
                return EXIT_USAGE;
            }
        } else if (opt == OPT_JSON) {
            json = true;
        } else {
            usage_hint();
            return EXIT_USAGE;
        }
    }
    if (!no_arguments_left("stats", argc, argv))
        return EXIT_USAGE;
    struct mt_store *store = open_for_reading(db_path);
    if (!store)
        return EXIT_DATABASE;
    static struct stats_context context;
    memset(&context, 0, sizeof context);
    int rows = store_query_sensor_stats(store, since, 0, collect_stats, &context);
    if (rows < 0) {
        fprintf(stderr, "mailtap: %s\n", store_error(store));
        store_close(store);
        return EXIT_DATABASE;
    }
    for (int i = 0; i < context.count; i++) {
        struct stats_group *g = &context.groups[i];
        g->newest.source = g->source;
        g->newest.health = g->health;
        double recent = store_sensor_sessions_per_minute(&g->newest, g->have_recent ? &g->recent
                                                                                    : &g->oldest);
        double run = store_sensor_sessions_per_minute(&g->newest, &g->oldest);
        output_sensor_stats(stdout, &g->newest, recent, run, g->oldest.ts_us, json);
    }
    print_worker_totals(&context, json);
    if (context.count == 0 && !json)
        printf("no capture statistics in %s%s\n", db_path, since ? " since that time" : "");
    store_close(store);
    return EXIT_OK;
}

static int command_trace(int argc, char **argv)
{
    const char *db_path = "mailtap.db";
    struct trace_context trace = { false };
    int opt;
    while ((opt = getopt_long(argc, argv, "d:", list_long_options, NULL)) != -1) {
        if (opt == 'd')
            db_path = optarg;
        else if (opt == OPT_JSON)
            trace.json = true;
        else {
            usage_hint();
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        usage_error("%s", "trace needs one Message-ID or address");
        return EXIT_USAGE;
    }
    struct mt_store *store = open_for_reading(db_path);
    if (!store)
        return EXIT_DATABASE;
    trace.key = argv[optind];
    int hops = store_trace(store, argv[optind], print_hop, &trace);
    if (hops < 0)
        fprintf(stderr, "mailtap: %s\n", store_error(store));
    else if (hops == 0 && !trace.json)
        fprintf(stderr, "mailtap: no session carried %s\n", argv[optind]);
    store_close(store);
    /* Nothing found is told apart from a trace that found hops, as grep does. */
    return hops < 0 ? EXIT_DATABASE : hops == 0 ? EXIT_INPUT : EXIT_OK;
}

static int command_ui(int argc, char **argv)
{
    const char *db_path = "mailtap.db";
    int opt;
    while ((opt = getopt_long(argc, argv, "d:", list_long_options, NULL)) != -1) {
        if (opt != 'd') {
            usage_hint();
            return EXIT_USAGE;
        }
        db_path = optarg;
    }
    if (!no_arguments_left("ui", argc, argv))
        return EXIT_USAGE;
    if (access(db_path, R_OK) != 0) {
        fprintf(stderr, "mailtap: %s: no such database (create one with mailtap read)\n", db_path);
        return EXIT_DATABASE;
    }
    char err[512];
    struct mt_store *store = store_open(db_path, false, err, sizeof err);
    if (store) {   /* said before the console takes the screen: seen again when it ends */
        note_missing_indexes(store, db_path);
        store_close(store);
    }
    int rc = ui_run(db_path, NULL);
    return rc == 0 ? EXIT_OK : rc == 1 ? EXIT_DATABASE : EXIT_USAGE;
}

int main(int argc, char **argv)
{
    store_global_init();
    if (argc < 2) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    const char *command = argv[1];
    if (strcmp(command, "-h") == 0 || strcmp(command, "--help") == 0 || strcmp(command, "help") == 0) {
        fputs(usage_text, stdout);
        return EXIT_OK;
    }
    if (strcmp(command, "--version") == 0) {
        printf("mailtap %s\n", MAILTAP_VERSION);
        return EXIT_OK;
    }
    for (int i = 2; i < argc; i++) {   /* "mailtap read --help": the help, not an error */
        if (strcmp(argv[i], "--help") == 0) {
            fputs(usage_text, stdout);
            return EXIT_OK;
        }
    }
    /* Subcommand options are parsed from argv[1] on, as if the subcommand were the
     * program. */
    argc--;
    argv++;
    optind = 1;
    if (strcmp(command, "read") == 0)
        return command_read(argc, argv);
    if (strcmp(command, "capture") == 0)
        return command_capture(argc, argv);
    if (strcmp(command, "list") == 0)
        return command_list(argc, argv);
    if (strcmp(command, "show") == 0)
        return command_show(argc, argv);
    if (strcmp(command, "ui") == 0)
        return command_ui(argc, argv);
    if (strcmp(command, "trace") == 0)
        return command_trace(argc, argv);
    if (strcmp(command, "stats") == 0)
        return command_stats(argc, argv);
    usage_error("unknown command: %s", command);
    return EXIT_USAGE;
}
