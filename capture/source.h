/* source.h — where packets come from: pcap/pcapng files (or stdin) read in order as one
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
    uint64_t kernel_drops;     /* live only: pcap_stats ps_drop */
    uint64_t interface_drops;  /* live only: pcap_stats ps_ifdrop */
};

/* Offline: opens nothing yet; each file is opened in turn by capture_next(). "-" is
 * stdin. The paths array must outlive the source. */
struct capture_source *capture_open_files(const char *const *paths, int count);

/* Live: promiscuous, full snaplen, large buffer. filter NULL means the default. */
struct capture_source *capture_open_live(const char *iface, const char *filter,
                                         int buffer_mb, char *err, size_t errlen);

/* Returns 1 with a packet, 0 at the end of all input (or when capture_stop() was
 * called), -1 when a file could not be opened or was cut short: capture_error() says
 * why and the next call goes on with the next file. */
int capture_next(struct capture_source *source, struct capture_packet *packet);

/* Safe to call from a signal handler: makes capture_next() return 0 soon. */
void capture_stop(struct capture_source *source);

const char *capture_error(const struct capture_source *source);
const char *capture_current_name(const struct capture_source *source);
void capture_get_stats(struct capture_source *source, struct capture_stats *stats);
void capture_close(struct capture_source *source);

#endif
