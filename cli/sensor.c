/* sensor.c — signals, privilege drop and worker processes for `mailtap capture`.
 * The one file-level state is what a signal handler must reach: the source to stop, the
 * flag that asks for a database reopen, and the workers to forward signals to. */
#include "cli/sensor.h"

#include "cli/privileges.h"
#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static struct capture_source *volatile signalled_source;
static volatile sig_atomic_t reopen_flag;
static pid_t workers[SENSOR_WORKERS_MAX];
static volatile sig_atomic_t worker_count;
static volatile sig_atomic_t stopping;    /* SIGTERM/SIGINT forwarded: workers end now */

static void on_signal(int signo)
{
    int saved = errno;
    if (signo != SIGHUP)
        stopping = 1;
    for (int i = 0; i < worker_count; i++)
        if (workers[i] > 0)
            kill(workers[i], signo == SIGINT ? SIGTERM : signo);
    if (signo == SIGHUP)
        reopen_flag = 1;
    else if (signalled_source)
        capture_stop(signalled_source);
    errno = saved;
}

void sensor_handle_signals(struct capture_source *source, struct pipeline_options *options)
{
    signalled_source = source;
    if (options)
        options->reopen_requested = &reopen_flag;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGHUP, &action, NULL);
}

void sensor_forget_source(void)
{
    signalled_source = NULL;
}

struct drop_context {
    const char *user;
    const char *db_path;
};

static struct drop_context drop_context;

/* options->ready: the interface and the database are open; become the user. */
static int drop_when_ready(void *ctx)
{
    const struct drop_context *drop = ctx;
    char wal[4096], shm[4096], err[512];
    snprintf(wal, sizeof wal, "%s-wal", drop->db_path);
    snprintf(shm, sizeof shm, "%s-shm", drop->db_path);
    const char *files[] = { drop->db_path, wal, shm, NULL };
    if (privileges_drop(drop->user, files, err, sizeof err) < 0) {
        fprintf(stderr, "mailtap: %s\n", err);
        return 2;
    }
    if (err[0])
        fprintf(stderr, "mailtap: warning: %s\n", err);
    else if (drop->user && strcmp(drop->user, "root") != 0)
        fprintf(stderr, "mailtap: running as %s from here on\n", drop->user);
    /* Rotation (move the file away, SIGHUP) creates the database anew in its directory:
     * said now, not when the first rotation loses the sessions of its gap. */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", drop->db_path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else
        slash[slash == dir] = '\0';   /* "/x.db": the directory is "/" */
    if (access(dir, W_OK | X_OK) != 0)
        fprintf(stderr, "mailtap: warning: %s is not writable%s%s: after the database is moved "
                "away (rotation), SIGHUP cannot create a new one, and sessions are not stored "
                "until it can\n", dir, drop->user ? " by " : "", drop->user ? drop->user : "");
    return 0;
}

void sensor_drop_privileges_when_ready(struct pipeline_options *options, const char *user)
{
    if (!user)
        return;
    drop_context.user = user;
    drop_context.db_path = options->db_path;
    options->ready = drop_when_ready;
    options->ready_ctx = &drop_context;
}

/* One worker: its own handle in the fanout group, its own pipeline. */
static int worker_main(const struct sensor_options *sensor, struct pipeline_options *options,
                       int index, int group)
{
    char label[128], err[512];
    snprintf(label, sizeof label, "%s#%d", sensor->iface, index + 1);
    options->stats_label = label;
    struct capture_live_options live = sensor->live;
    live.fanout_group = group;
    struct capture_source *source = capture_open_live(sensor->iface, &live, err, sizeof err);
    if (!source) {
        fprintf(stderr, "mailtap: worker %d: %s\n", index + 1, err);
        return 1;
    }
    sensor_handle_signals(source, options);
    if (!options->quiet)   /* it is in the fanout group from here on */
        fprintf(stderr, "mailtap: worker %d capturing on %s\n", index + 1, sensor->iface);
    struct pipeline_summary summary;
    int rc = pipeline_run(options, source, &summary);
    sensor_forget_source();
    struct capture_stats stats;
    capture_get_stats(source, &stats);
    capture_close(source);
    /* One write for the whole report: the workers share stderr. */
    char *report = NULL;
    size_t report_len = 0;
    FILE *out = open_memstream(&report, &report_len);
    if (out) {
        fprintf(out, "mailtap: %s: ", label);
        pipeline_print_summary(&summary, out);
        fprintf(out, "mailtap: %s: kernel dropped %llu packets, interface dropped %llu\n", label,
                (unsigned long long)stats.kernel_drops, (unsigned long long)stats.interface_drops);
        fclose(out);
        fputs(report, stderr);
        free(report);
    }
    return rc;
}

bool sensor_lock_database(const char *db_path)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s.lock", db_path) >= (int)sizeof path)
        return true;
    /* flock, not fcntl: SQLite's own locks on the database are fcntl locks, and these two
     * kinds never meet on Linux. The name, not the file, is locked: a rotated database
     * (moved, SIGHUP) is still this sensor's path. Left open on purpose. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "mailtap: warning: %s: %s (another sensor on this database would not"
                " be noticed)\n", path, strerror(errno));
        return true;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
        return true;
    int error = errno;
    close(fd);
    if (error == EWOULDBLOCK)
        fprintf(stderr, "mailtap: another `mailtap capture` is storing into %s (it holds %s):"
                " two sensors on one database store every session twice; give this one"
                " another -d, or --workers to the one running\n", db_path, path);
    else
        fprintf(stderr, "mailtap: warning: %s: %s\n", path, strerror(error));
    return error != EWOULDBLOCK;
}

int sensor_run_workers(const struct sensor_options *sensor, struct pipeline_options *options)
{
    char err[512];
    /* The schema is created once, here, so the workers never race to create it. */
    struct mt_store *store = store_open(options->db_path, true, err, sizeof err);
    if (!store) {
        fprintf(stderr, "mailtap: %s\n", err);
        return 3;
    }
    store_close(store);
    int group = (int)(getpid() & 0xffff);
    /* Several writers share the database: each holds its write lock briefly (a short
     * batch) so that no worker waits long on another and stops reading its ring. */
    options->batch_sessions = 100;
    options->batch_ms = 50;
    sensor_handle_signals(NULL, options);
    fflush(NULL);
    for (int i = 0; i < sensor->workers && i < SENSOR_WORKERS_MAX; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("mailtap: fork");
            break;
        }
        if (pid == 0) {
            worker_count = 0;   /* a worker forwards nothing */
            prctl(PR_SET_PDEATHSIG, SIGTERM);   /* never outlive the parent */
            if (getppid() == 1)
                _exit(1);
            _exit(worker_main(sensor, options, i, group));
        }
        workers[i] = pid;
        worker_count = i + 1;
    }
    int worst = worker_count == sensor->workers ? 0 : 1;
    for (int left = worker_count; left > 0;) {
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < worker_count; i++)
            if (workers[i] == pid) {
                workers[i] = 0;
                left--;
                int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
                if (rc > worst)
                    worst = rc;
                /* Said at once: the kernel gives its flows to the others, which carry the
                 * whole load from now on (or nothing is captured any more). */
                if (!stopping && WIFSIGNALED(status))
                    fprintf(stderr, "mailtap: worker %d (pid %d) was killed by signal %d; %d"
                            " worker%s left\n", i + 1, (int)pid, WTERMSIG(status), left,
                            left == 1 ? "" : "s");
                else if (!stopping)
                    fprintf(stderr, "mailtap: worker %d (pid %d) ended with exit status %d;"
                            " %d worker%s left\n", i + 1, (int)pid, rc, left,
                            left == 1 ? "" : "s");
            }
    }
    worker_count = 0;
    return worst;
}
