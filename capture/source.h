/* source.h — where packets come from: pcap/pcapng files (or stdin) merged by time into one
 * timeline, or a live interface. Hands out link-layer frames with their capture time. */
#ifndef MAILTAP_SOURCE_H
#define MAILTAP_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* BPF used for live capture when the user gives none: mail ports and DNS, with or
 * without VLAN tags. */
#define CAPTURE_DEFAULT_FILTER \
    "tcp port 25 or tcp port 465 or tcp port 587 or tcp port 2525 or tcp port 110 or " \
    "tcp port 995 or tcp port 143 or tcp port 993 or port 53 or " \
    "(vlan and (tcp port 25 or tcp port 465 or tcp port 587 or tcp port 2525 or " \
    "tcp port 110 or tcp port 995 or tcp port 143 or tcp port 993 or port 53))"

struct capture_packet {
    const uint8_t *frame;  /* valid until the next capture_next() */
    size_t caplen;
    size_t wirelen;
    int64_t ts_us;         /* capture time, µs since the epoch */
    int dlt;               /* link type of the file or interface it came from */
};

struct capture_source;

struct capture_stats {
    uint64_t packets;
    uint64_t bytes;
    uint64_t kernel_drops;     /* live only: pcap_stats ps_drop, summed over reopens */
    uint64_t interface_drops;  /* live only: pcap_stats ps_ifdrop, summed over reopens */
    uint64_t reopens;          /* live only: times the interface was opened again */
};

/* Offline: opens nothing yet; capture_next() merges the files by time, opening each when
 * the timeline reaches it. "-" is stdin. The paths array must outlive the source. */
struct capture_source *capture_open_files(const char *const *paths, int count);

/* Puts capture files in the order of their first packets' times (stable; a file whose
 * first packet cannot be read goes last, where reading it reports why), the order
 * capture_next() merges them in: it opens a file only once the timeline reaches the file's
 * first packet. Nothing moves when "-" (stdin, which cannot be read twice) is among them.
 * True when the order changed. */
bool capture_sort_files_by_time(const char **paths, int count);

/* Live capture settings. */
struct capture_live_options {
    const char *filter;   /* BPF; NULL: CAPTURE_DEFAULT_FILTER */
    int buffer_mb;        /* kernel buffer; <= 0: 64 */
    int fanout_group;     /* > 0: join this Linux PACKET_FANOUT group (hash by flow) so that
                             several processes share the interface, each connection in one */
};

/* Live: promiscuous, full snaplen, large buffer, immediate delivery off. */
struct capture_source *capture_open_live(const char *iface, const struct capture_live_options *options,
                                         char *err, size_t errlen);

/* Whether filter compiles as a BPF filter (for Ethernet, what a sensor's interface is):
 * a typo is a usage error at once, not an exit status a service manager restarts on.
 * False with pcap's message in err. */
bool capture_filter_valid(const char *filter, char *err, size_t errlen);

/* Why a live capture sees nothing right now (the link down, the interface gone), for the
 * statistics' health; NULL when nothing is known wrong (always for files). */
const char *capture_input_problem(const struct capture_source *source);

/* What capture_next() returns. */
enum capture_result {
    CAPTURE_ERROR = -1,  /* a file could not be opened or was cut short, or a live interface
                            failed: capture_error() says why; the next call goes on (next
                            file; live: the interface is reopened when it is back) */
    CAPTURE_END = 0,     /* the end of all input, or capture_stop() was called */
    CAPTURE_PACKET = 1,  /* *packet is filled */
    CAPTURE_IDLE = 2,    /* live: no packet for a while; packet->ts_us is the wall clock, so
                            that timers (idle streams, batches, statistics) still run */
    CAPTURE_NOTICE = 3,  /* live: something the operator should know (the interface went
                            down, came back, was reopened): capture_error() says what */
};

int capture_next(struct capture_source *source, struct capture_packet *packet);

/* Safe to call from a signal handler: makes capture_next() return 0 soon. */
void capture_stop(struct capture_source *source);

/* capture_stop() was called: the input was not read to its end. */
bool capture_stopped(const struct capture_source *source);

const char *capture_error(const struct capture_source *source);
bool capture_is_live(const struct capture_source *source);
const char *capture_current_name(const struct capture_source *source);
void capture_get_stats(struct capture_source *source, struct capture_stats *stats);
void capture_close(struct capture_source *source);

#endif
