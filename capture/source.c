/* source.c — libpcap input: capture files merged into one timeline, or a live interface
 * that is watched (link down/up is logged) and reopened when it disappears and comes back,
 * so that an unattended sensor survives a NIC reset or a driver reload.
 *
 * Files are read as mergecap would join them: the next packet is always the earliest of
 * the open files' next packets. A file is opened only once the timeline may need it (the
 * files come sorted by their first packets, capture_sort_files_by_time()), so rotated
 * files are read one after the other and only files that overlap in time are open
 * together. Read one after the other, a file that overlapped the one before had every
 * time stamp clamped to that file's end (reassembly's clock never goes back). */
#include "source.h"

#include "linklayer.h"

#include <errno.h>
#include <limits.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { LIVE_SNAPLEN = 262144, LIVE_TIMEOUT_MS = 250 };
#define LINK_CHECK_US 1000000    /* link state looked at once a second */
#define REOPEN_RETRY_US 1000000  /* a vanished interface is tried again once a second */
#define DRAIN_US 2000000         /* on stop, packets already in the ring are read this long */
/* libpcap reads a file with two fread()s per packet through a stdio buffer of st_blksize
 * (4 KiB): 265,000 read() calls per GB. Ours is 256 KiB and page-aligned: from malloc() it
 * starts 16 bytes past a page boundary, and the kernel's copy into it took 0.6 s of system
 * time per GB here instead of 0.17 s (AMD EPYC guest). */
#define FILE_BUFFER_BYTES (256 * 1024)
#define FILE_BUFFER_ALIGN 4096

/* Files open at once at most (each holds a FILE_BUFFER_BYTES buffer): past this many files
 * overlapping in time, the next one waits until one is done, and its packets come late. */
#define MERGE_FILES_MAX 64

/* An open capture file and the packet it is at: read, not handed out yet. */
struct file_reader {
    pcap_t *pcap;
    char *buffer;                  /* its stdio buffer; NULL for stdin (libpcap's own) */
    const char *path;
    int dlt;
    int order;                     /* in paths: the earlier file wins a tie */
    uint64_t packets;              /* read from it so far */
    struct pcap_pkthdr *header;    /* valid until its next pcap_next_ex() */
    const u_char *data;
    int64_t ts_us;
};

struct capture_source {
    pcap_t *pcap;                  /* live only */
    int dlt;
    bool live;
    const char *const *paths;
    int path_count;
    int next_path;
    const char *current;
    /* offline only */
    struct file_reader *readers[MERGE_FILES_MAX];
    int reader_count;
    struct file_reader *handed;    /* its packet was handed out: it reads on next time */
    int64_t last_opened_first_us;  /* the first packet of the file opened last */
    bool merge_full_noted;
    volatile sig_atomic_t stop_requested;
    struct capture_stats stats;
    char error[PCAP_ERRBUF_SIZE + 256];
    /* live only */
    char *iface, *filter;
    int buffer_mb, fanout_group;
    int link_socket;               /* for SIOCGIFFLAGS; -1 if none */
    int link_up;                   /* last seen: 1 up and running, 0 down, -1 unknown */
    unsigned ifindex;              /* of the interface the handle is bound to */
    int64_t next_link_check_us, next_reopen_us;
    int64_t drain_until_us;        /* stopping: the ring is emptied until then; 0: not yet */
    struct capture_stats closed;   /* drops counted by handles already closed */
};

static int64_t wall_clock_us(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

/* pcapng time stamps are 64-bit: a corrupt or hostile file can hold any seconds value.
 * Clamped to [0, 9999-12-31] so that the microsecond count (and the timeouts added to it
 * downstream) cannot overflow. */
static int64_t packet_time_us(const struct pcap_pkthdr *header)
{
    const int64_t max_s = 253402300799;
    int64_t s = header->ts.tv_sec < 0 ? 0 : header->ts.tv_sec > max_s ? max_s : header->ts.tv_sec;
    return s * 1000000 + header->ts.tv_usec;
}

/* The time of a capture file's first packet; INT64_MAX when there is none to read. */
static int64_t first_packet_us(const char *path)
{
    char errbuf[PCAP_ERRBUF_SIZE];
    pcap_t *pcap = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_MICRO,
                                                           errbuf);
    if (!pcap)
        return INT64_MAX;
    struct pcap_pkthdr *header;
    const u_char *data;
    int64_t first = pcap_next_ex(pcap, &header, &data) == 1 ? packet_time_us(header) : INT64_MAX;
    pcap_close(pcap);
    return first;
}

struct timed_path {
    int64_t first_us;
    int given;          /* position on the command line: ties keep it */
    const char *path;
};

static int by_first_packet(const void *a, const void *b)
{
    const struct timed_path *x = a, *y = b;
    if (x->first_us != y->first_us)
        return x->first_us < y->first_us ? -1 : 1;
    return (x->given > y->given) - (x->given < y->given);
}

bool capture_sort_files_by_time(const char **paths, int count)
{
    for (int i = 0; i < count; i++)
        if (strcmp(paths[i], "-") == 0)
            return false;
    struct timed_path *files = malloc((size_t)count * sizeof *files);
    if (!files)
        return false;
    for (int i = 0; i < count; i++)
        files[i] = (struct timed_path){ first_packet_us(paths[i]), i, paths[i] };
    qsort(files, (size_t)count, sizeof *files, by_first_packet);
    bool moved = false;
    for (int i = 0; i < count; i++) {
        moved = moved || files[i].given != i;
        paths[i] = files[i].path;
    }
    free(files);
    return moved;
}

struct capture_source *capture_open_files(const char *const *paths, int count)
{
    struct capture_source *source = calloc(1, sizeof *source);
    if (!source)
        return NULL;
    source->paths = paths;
    source->path_count = count;
    return source;
}

static int set_error(struct capture_source *source, const char *fmt, const char *a, const char *b)
{
    snprintf(source->error, sizeof source->error, fmt, a, b);
    return -1;
}

static void reader_close(struct capture_source *source, struct file_reader *reader)
{
    for (int i = 0; i < source->reader_count; i++)
        if (source->readers[i] == reader) {
            source->readers[i] = source->readers[--source->reader_count];
            break;
        }
    if (source->handed == reader)
        source->handed = NULL;
    if (reader->pcap)
        pcap_close(reader->pcap);
    free(reader->buffer);   /* after pcap_close(): the file used it until then */
    free(reader);
}

/* Reads the reader's next packet: 1, or 0 at the end of the file and -1 when it is cut
 * short or corrupt (libpcap cannot resynchronise), the reader being closed then. */
static int reader_next(struct capture_source *source, struct file_reader *reader)
{
    int rc = pcap_next_ex(reader->pcap, &reader->header, &reader->data);
    if (rc == 1) {
        reader->ts_us = packet_time_us(reader->header);
        reader->packets++;
        return 1;
    }
    int result = 0;
    const char *why = rc == PCAP_ERROR ? pcap_geterr(reader->pcap) : "";
    if (rc == PCAP_ERROR && strstr(why, "different from the type of the first interface")) {
        /* dumpcap on several interfaces writes one pcapng with a link type per interface;
         * libpcap reads one link type per file. The file is not damaged. */
        snprintf(source->error, sizeof source->error,
                 "%s: a pcapng whose interfaces have different link types (%s), which "
                 "libpcap cannot read; %llu packets before it were processed. Split it by "
                 "interface: tshark -r FILE -Y 'frame.interface_id == N' -w PART.pcapng",
                 reader->path, why, (unsigned long long)reader->packets);
        result = -1;
    } else if (rc == PCAP_ERROR && source->stop_requested &&
               strstr(why, "Interrupted system call")) {
        /* Ctrl-C while a pipe's reader waited (tcpdump -w - | mailtap read -): the stop,
         * which the summary reports, not a corrupt capture */
    } else if (rc == PCAP_ERROR) {   /* PCAP_ERROR_BREAK is the end of the file */
        snprintf(source->error, sizeof source->error,
                 "%s: capture is truncated or corrupt after %llu packets (%s); "
                 "everything before that point was processed",
                 reader->path, (unsigned long long)reader->packets, why);
        result = -1;
    }
    reader_close(source, reader);
    return result;
}

/* Opens the next file and reads its first packet: 1 when it has one, 0 when it is empty,
 * -1 when it cannot be read (source->error says why). */
static int open_next_file(struct capture_source *source)
{
    char errbuf[PCAP_ERRBUF_SIZE] = "";
    struct file_reader *reader = calloc(1, sizeof *reader);
    if (!reader) {   /* this file is skipped, as one that cannot be opened */
        const char *path = source->paths[source->next_path++];
        return set_error(source, "%s: cannot read capture: %s", path, strerror(ENOMEM));
    }
    reader->order = source->next_path;
    reader->path = source->current = source->paths[source->next_path++];
    if (strcmp(reader->path, "-") == 0) {
        /* stdin outlives the source (pcap_close() leaves it open): libpcap's own buffer */
        reader->pcap = pcap_open_offline_with_tstamp_precision(
            reader->path, PCAP_TSTAMP_PRECISION_MICRO, errbuf);
    } else {
        FILE *file = fopen(reader->path, "rb");
        if (!file) {
            set_error(source, "%s: cannot read capture: %s", reader->path, strerror(errno));
            free(reader);
            return -1;
        }
        reader->buffer = aligned_alloc(FILE_BUFFER_ALIGN, FILE_BUFFER_BYTES);
        if (reader->buffer)   /* else stdio's own */
            setvbuf(file, reader->buffer, _IOFBF, FILE_BUFFER_BYTES);
        reader->pcap = pcap_fopen_offline_with_tstamp_precision(
            file, PCAP_TSTAMP_PRECISION_MICRO, errbuf);
        if (!reader->pcap)
            fclose(file);   /* only a handle that opened takes the file (pcap_close()) */
    }
    if (!reader->pcap) {
        set_error(source, "%s: cannot read capture: %s", reader->path, errbuf);
        free(reader->buffer);
        free(reader);
        return -1;
    }
    reader->dlt = pcap_datalink(reader->pcap);
    source->readers[source->reader_count++] = reader;
    if (!link_type_supported(reader->dlt)) {
        const char *name = pcap_datalink_val_to_name(reader->dlt);
        char number[32];
        snprintf(number, sizeof number, "%d%s%s", reader->dlt, name ? " " : "", name ? name : "");
        set_error(source, "%s: unsupported link type %s; skipped", reader->path, number);
        reader_close(source, reader);
        return -1;
    }
    int first = reader_next(source, reader);
    if (first == 1)
        source->last_opened_first_us = reader->ts_us;
    return first;
}

/* The open file whose packet is the earliest (the earlier file on a tie); NULL if none. */
static struct file_reader *earliest_reader(const struct capture_source *source)
{
    struct file_reader *best = NULL;
    for (int i = 0; i < source->reader_count; i++) {
        struct file_reader *r = source->readers[i];
        if (!best || r->ts_us < best->ts_us || (r->ts_us == best->ts_us && r->order < best->order))
            best = r;
    }
    return best;
}

/* Opens the interface with the source's settings into source->pcap; 0 or -1 (err). */
static int open_live_handle(struct capture_source *source, char *err, size_t errlen)
{
    char errbuf[PCAP_ERRBUF_SIZE] = "";
    struct bpf_program program;
    pcap_t *pcap = pcap_create(source->iface, errbuf);
    if (!pcap) {
        snprintf(err, errlen, "%s: %s", source->iface, errbuf);
        return -1;
    }
    pcap_set_snaplen(pcap, LIVE_SNAPLEN);
    pcap_set_promisc(pcap, 1);
    pcap_set_timeout(pcap, LIVE_TIMEOUT_MS);
    pcap_set_immediate_mode(pcap, 0);   /* batches: fewer wake-ups at high rates */
    int64_t buffer = (int64_t)(source->buffer_mb > 0 ? source->buffer_mb : 64) * 1024 * 1024;
    pcap_set_buffer_size(pcap, buffer > INT_MAX ? INT_MAX : (int)buffer);
    int rc = pcap_activate(pcap);
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s%s", source->iface, pcap_geterr(pcap),
                 rc == PCAP_ERROR_PERM_DENIED ? " (live capture needs root, or CAP_NET_RAW:"
                                                " setcap cap_net_raw+ep on the binary)" : "");
        goto fail;
    }
    /* Non-blocking, waited for with poll(): with TPACKET_V3 a blocking read never times
     * out on a silent link (the kernel retires no empty block), and the timers (batch
     * commits, idle streams, statistics) must run on a quiet mirror port too. */
    if (pcap_setnonblock(pcap, 1, errbuf) < 0) {
        snprintf(err, errlen, "%s: %s", source->iface, errbuf);
        goto fail;
    }
    int dlt = pcap_datalink(pcap);
    if (!link_type_supported(dlt)) {
        snprintf(err, errlen, "%s: unsupported link type %d", source->iface, dlt);
        goto fail;
    }
    if (pcap_compile(pcap, &program, source->filter ? source->filter : CAPTURE_DEFAULT_FILTER,
                     1, PCAP_NETMASK_UNKNOWN) < 0) {
        snprintf(err, errlen, "bad filter: %s", pcap_geterr(pcap));
        goto fail;
    }
    rc = pcap_setfilter(pcap, &program);
    pcap_freecode(&program);
    if (rc < 0) {
        snprintf(err, errlen, "cannot set filter: %s", pcap_geterr(pcap));
        goto fail;
    }
    if (source->fanout_group > 0) {
        /* Hash by flow (the kernel's hash is symmetric: both directions of a connection
         * reach the same process); reassemble IP fragments first so they hash alike. */
        uint32_t arg = ((uint32_t)source->fanout_group & 0xffffu) |
                       ((uint32_t)(PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG) << 16);
        if (setsockopt(pcap_get_selectable_fd(pcap), SOL_PACKET, PACKET_FANOUT, &arg,
                       sizeof arg) < 0) {
            snprintf(err, errlen, "%s: cannot join packet fanout group %d: %s", source->iface,
                     source->fanout_group, strerror(errno));
            goto fail;
        }
    }
    source->pcap = pcap;
    source->dlt = dlt;
    source->ifindex = if_nametoindex(source->iface);
    return 0;
fail:
    pcap_close(pcap);
    return -1;
}

/* 1 when the interface is up and running (carrier), 0 when not, -1 when unknown, -2 when
 * it is gone, or is another interface now under the same name (the handle is dead). */
static int link_state(const struct capture_source *source)
{
    unsigned index = if_nametoindex(source->iface);
    if ((index == 0 && errno == ENODEV) || (index != 0 && source->ifindex != 0 && index != source->ifindex))
        return -2;
    struct ifreq request;
    if (source->link_socket < 0 || strlen(source->iface) >= sizeof request.ifr_name)
        return -1;
    memset(&request, 0, sizeof request);
    memcpy(request.ifr_name, source->iface, strlen(source->iface));
    if (ioctl(source->link_socket, SIOCGIFFLAGS, &request) < 0)
        return -1;
    return (request.ifr_flags & IFF_UP) && (request.ifr_flags & IFF_RUNNING);
}

bool capture_filter_valid(const char *filter, char *err, size_t errlen)
{
    pcap_t *dead = pcap_open_dead(DLT_EN10MB, 65535);
    if (!dead)
        return true;   /* cannot tell: the live open will */
    struct bpf_program program;
    bool valid = pcap_compile(dead, &program, filter, 1, PCAP_NETMASK_UNKNOWN) == 0;
    if (valid)
        pcap_freecode(&program);
    else
        snprintf(err, errlen, "%s", pcap_geterr(dead));
    pcap_close(dead);
    return valid;
}

struct capture_source *capture_open_live(const char *iface, const struct capture_live_options *options,
                                         char *err, size_t errlen)
{
    struct capture_source *source = calloc(1, sizeof *source);
    if (!source) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    source->live = true;
    source->link_socket = -1;
    source->iface = strdup(iface);
    source->filter = options->filter ? strdup(options->filter) : NULL;
    source->buffer_mb = options->buffer_mb;
    source->fanout_group = options->fanout_group;
    source->current = source->iface;
    if (!source->iface || (options->filter && !source->filter)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (open_live_handle(source, err, errlen) < 0)
        goto fail;
    source->link_socket = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    source->link_up = link_state(source);
    return source;
fail:
    capture_close(source);
    return NULL;
}

/* Closes a failed live handle, keeping its drop counters. */
static void live_handle_lost(struct capture_source *source)
{
    struct pcap_stat ps;
    if (pcap_stats(source->pcap, &ps) == 0) {
        source->closed.kernel_drops += ps.ps_drop;
        source->closed.interface_drops += ps.ps_ifdrop;
    }
    pcap_close(source->pcap);
    source->pcap = NULL;
}

/* The handle failed: closed, reopened once a second from now on. */
static int live_failed(struct capture_source *source, int64_t now, const char *why)
{
    snprintf(source->error, sizeof source->error,
             "%s: capture failed: %s; reopening the interface when it is back", source->iface, why);
    live_handle_lost(source);
    source->next_reopen_us = now + REOPEN_RETRY_US;
    return CAPTURE_ERROR;
}

static int link_changed(struct capture_source *source, int up)
{
    source->link_up = up;
    snprintf(source->error, sizeof source->error,
             up ? "%s: link is up again" : "%s: link is down (administratively, or no carrier): "
             "nothing can be captured until it is back", source->iface);
    return CAPTURE_NOTICE;
}

/* A packet read from either kind of source. */
static int packet_read(struct capture_source *source, const struct pcap_pkthdr *header,
                       const u_char *data, struct capture_packet *packet)
{
    packet->frame = data;
    packet->caplen = header->caplen;
    packet->wirelen = header->len;
    packet->ts_us = packet_time_us(header);
    packet->dlt = source->dlt;
    source->stats.packets++;
    source->stats.bytes += header->caplen;
    return CAPTURE_PACKET;
}

static int live_idle(struct capture_packet *packet, int64_t now)
{
    memset(packet, 0, sizeof *packet);
    packet->ts_us = now;
    return CAPTURE_IDLE;
}

static int live_next(struct capture_source *source, struct capture_packet *packet)
{
    for (;;) {
        int64_t now = wall_clock_us();
        if (source->stop_requested) {
            /* What the kernel already captured is decoded, not thrown away: read the
             * ring until it is empty (or for DRAIN_US on a link that never pauses). */
            if (!source->pcap)
                return CAPTURE_END;
            if (!source->drain_until_us)
                source->drain_until_us = now + DRAIN_US;
            else if (now > source->drain_until_us)
                return CAPTURE_END;
        }
        if (!source->pcap) {   /* the interface vanished: try again once a second */
            if (now < source->next_reopen_us) {
                usleep(LIVE_TIMEOUT_MS * 1000);
                return live_idle(packet, wall_clock_us());
            }
            char err[PCAP_ERRBUF_SIZE + 128];
            if (open_live_handle(source, err, sizeof err) < 0) {
                source->next_reopen_us = now + REOPEN_RETRY_US;
                return live_idle(packet, now);
            }
            source->stats.reopens++;
            source->link_up = link_state(source);
            snprintf(source->error, sizeof source->error, "%s: interface is back: capturing again",
                     source->iface);
            return CAPTURE_NOTICE;
        }
        if (now >= source->next_link_check_us && !source->stop_requested) {
            source->next_link_check_us = now + LINK_CHECK_US;
            int up = link_state(source);
            if (up == -2)
                return live_failed(source, now, "the interface disappeared");
            if (up >= 0 && up != source->link_up)
                return link_changed(source, up);
        }
        struct pcap_pkthdr *header;
        const u_char *data;
        int rc = pcap_next_ex(source->pcap, &header, &data);
        if (rc == 1)
            return packet_read(source, header, data, packet);
        if (rc == 0) {   /* nothing ready */
            /* Stopping: the ring is empty once the block the kernel is still filling has
             * been handed over too, which it does after the read timeout (TPACKET_V3): a
             * stop soon after the last traffic lost everything in that block. */
            if (source->stop_requested &&
                now - (source->drain_until_us - DRAIN_US) > (LIVE_TIMEOUT_MS + 100) * 1000LL)
                return CAPTURE_END;
            int fd = pcap_get_selectable_fd(source->pcap);
            struct pollfd ready = { .fd = fd, .events = POLLIN };
            int n = poll(&ready, 1, LIVE_TIMEOUT_MS);
            if (n <= 0)
                return live_idle(packet, wall_clock_us());   /* timeout, or a signal */
            if (!(ready.revents & (POLLERR | POLLHUP | POLLNVAL)))
                continue;
            /* The socket failed (the interface vanished): libpcap would not say so in
             * non-blocking mode, so ask the socket. */
            int error = 0;
            socklen_t len = sizeof error;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);   /* also clears it */
            if (error == ENETDOWN) {
                /* Linux reports the link going down this way; the socket works again
                 * when it is back up (as libpcap itself treats it). */
                source->next_link_check_us = now + LINK_CHECK_US;
                return link_changed(source, 0);
            }
            return live_failed(source, now, error == ENODEV ? "the interface disappeared"
                                            : error ? strerror(error) : "socket error");
        }
        if (rc == PCAP_ERROR_BREAK)
            continue;   /* a stray pcap_breakloop(): the stop flag decides */
        return live_failed(source, now, pcap_geterr(source->pcap));
    }
}

int capture_next(struct capture_source *source, struct capture_packet *packet)
{
    if (source->live)
        return live_next(source, packet);
    if (source->stop_requested)
        return CAPTURE_END;
    struct file_reader *handed = source->handed;
    source->handed = NULL;
    if (handed && reader_next(source, handed) < 0)
        return CAPTURE_ERROR;   /* it is closed: the next call goes on with the rest */
    for (;;) {
        struct file_reader *next = earliest_reader(source);
        /* The files are sorted by first packet: a file not yet open can only come first
         * when the one opened last starts no later than the packet that would. */
        bool may_need_more = source->next_path < source->path_count &&
                             (!next || source->last_opened_first_us <= next->ts_us);
        if (may_need_more && source->reader_count == MERGE_FILES_MAX) {
            if (!source->merge_full_noted) {
                source->merge_full_noted = true;
                snprintf(source->error, sizeof source->error,
                         "more than %d capture files overlap in time: %s and those after it "
                         "are read as others end (their packets may come late)",
                         MERGE_FILES_MAX, source->paths[source->next_path]);
                return CAPTURE_ERROR;
            }
            may_need_more = false;   /* full: the earliest open file goes on */
        }
        if (!may_need_more) {
            if (!next)
                return CAPTURE_END;
            source->handed = next;
            source->current = next->path;
            source->dlt = next->dlt;
            return packet_read(source, next->header, next->data, packet);
        }
        if (open_next_file(source) < 0)
            return CAPTURE_ERROR;
    }
}

bool capture_stopped(const struct capture_source *source)
{
    return source->stop_requested != 0;
}

void capture_stop(struct capture_source *source)
{
    /* Live capture polls with a timeout and drains the ring before it ends: no
     * pcap_breakloop(), which would cut that short. */
    source->stop_requested = 1;
}

const char *capture_error(const struct capture_source *source)
{
    return source->error;
}

const char *capture_input_problem(const struct capture_source *source)
{
    if (!source || !source->live)
        return NULL;
    if (!source->pcap)
        return "the interface is gone: nothing is captured until it is back";
    if (source->link_up == 0)
        return "the link is down: nothing is captured until it is back";
    return NULL;
}

bool capture_is_live(const struct capture_source *source)
{
    return source->live;
}

const char *capture_current_name(const struct capture_source *source)
{
    return source->current ? source->current : "";
}

void capture_get_stats(struct capture_source *source, struct capture_stats *stats)
{
    if (source->live) {
        struct pcap_stat ps;
        source->stats.kernel_drops = source->closed.kernel_drops;
        source->stats.interface_drops = source->closed.interface_drops;
        if (source->pcap && pcap_stats(source->pcap, &ps) == 0) {
            source->stats.kernel_drops += ps.ps_drop;
            source->stats.interface_drops += ps.ps_ifdrop;
        }
    }
    *stats = source->stats;
}

void capture_close(struct capture_source *source)
{
    if (!source)
        return;
    if (source->pcap)
        pcap_close(source->pcap);
    while (source->reader_count > 0)
        reader_close(source, source->readers[0]);
    if (source->live && source->link_socket >= 0)
        close(source->link_socket);
    free(source->iface);
    free(source->filter);
    free(source);
}
