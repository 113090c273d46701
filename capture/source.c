/* source.c — libpcap input: files in order, or a live interface. */
#include "source.h"

#include "linklayer.h"

#include <pcap/pcap.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LIVE_SNAPLEN = 262144, LIVE_TIMEOUT_MS = 250 };

struct capture_source {
    pcap_t *pcap;
    int dlt;
    bool live;
    const char *const *paths;
    int path_count;
    int next_path;
    const char *current;
    volatile sig_atomic_t stop_requested;
    struct capture_stats stats;
    char error[PCAP_ERRBUF_SIZE + 256];
};

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

/* Opens the next file; returns 1 when one is open, 0 when none is left, -1 on error. */
static int open_next_file(struct capture_source *source)
{
    char errbuf[PCAP_ERRBUF_SIZE] = "";
    if (source->next_path >= source->path_count)
        return 0;
    source->current = source->paths[source->next_path++];
    source->pcap = pcap_open_offline_with_tstamp_precision(
        source->current, PCAP_TSTAMP_PRECISION_MICRO, errbuf);
    if (!source->pcap)
        return set_error(source, "%s: cannot read capture: %s", source->current, errbuf);
    source->dlt = pcap_datalink(source->pcap);
    if (!link_type_supported(source->dlt)) {
        const char *name = pcap_datalink_val_to_name(source->dlt);
        char number[32];
        snprintf(number, sizeof number, "%d%s%s", source->dlt, name ? " " : "", name ? name : "");
        pcap_close(source->pcap);
        source->pcap = NULL;
        return set_error(source, "%s: unsupported link type %s; skipped", source->current, number);
    }
    return 1;
}

struct capture_source *capture_open_live(const char *iface, const char *filter,
                                         int buffer_mb, char *err, size_t errlen)
{
    char errbuf[PCAP_ERRBUF_SIZE] = "";
    struct bpf_program program;
    struct capture_source *source = calloc(1, sizeof *source);
    if (!source) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    source->live = true;
    source->current = iface;
    pcap_t *pcap = pcap_create(iface, errbuf);
    if (!pcap) {
        snprintf(err, errlen, "%s: %s", iface, errbuf);
        goto fail;
    }
    source->pcap = pcap;
    pcap_set_snaplen(pcap, LIVE_SNAPLEN);
    pcap_set_promisc(pcap, 1);
    pcap_set_timeout(pcap, LIVE_TIMEOUT_MS);
    pcap_set_buffer_size(pcap, (buffer_mb > 0 ? buffer_mb : 64) * 1024 * 1024);
    int rc = pcap_activate(pcap);
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", iface, pcap_geterr(pcap));
        goto fail;
    }
    source->dlt = pcap_datalink(pcap);
    if (!link_type_supported(source->dlt)) {
        snprintf(err, errlen, "%s: unsupported link type %d", iface, source->dlt);
        goto fail;
    }
    if (pcap_compile(pcap, &program, filter ? filter : CAPTURE_DEFAULT_FILTER, 1,
                     PCAP_NETMASK_UNKNOWN) < 0) {
        snprintf(err, errlen, "bad filter: %s", pcap_geterr(pcap));
        goto fail;
    }
    rc = pcap_setfilter(pcap, &program);
    pcap_freecode(&program);
    if (rc < 0) {
        snprintf(err, errlen, "cannot set filter: %s", pcap_geterr(pcap));
        goto fail;
    }
    return source;
fail:
    capture_close(source);
    return NULL;
}

int capture_next(struct capture_source *source, struct capture_packet *packet)
{
    for (;;) {
        if (source->stop_requested)
            return 0;
        if (!source->pcap) {
            if (source->live)
                return 0;
            int opened = open_next_file(source);
            if (opened <= 0)
                return opened;
        }
        struct pcap_pkthdr *header;
        const u_char *data;
        int rc = pcap_next_ex(source->pcap, &header, &data);
        if (rc == 1) {
            packet->frame = data;
            packet->caplen = header->caplen;
            packet->wirelen = header->len;
            packet->ts_us = (int64_t)header->ts.tv_sec * 1000000 + header->ts.tv_usec;
            packet->dlt = source->dlt;
            source->stats.packets++;
            source->stats.bytes += header->caplen;
            return 1;
        }
        if (rc == 0)  /* live: timeout with no packet */
            continue;
        if (source->live) {
            if (rc == PCAP_ERROR_BREAK)
                return 0;
            snprintf(source->error, sizeof source->error, "%s: %s", source->current,
                     pcap_geterr(source->pcap));
            return -1;
        }
        /* Offline: PCAP_ERROR_BREAK is the end of the file; PCAP_ERROR a cut-short or
         * corrupt file, after which libpcap cannot resynchronise. */
        int result = 0;
        if (rc == PCAP_ERROR) {
            snprintf(source->error, sizeof source->error,
                     "%s: capture is truncated or corrupt after %llu packets (%s); "
                     "everything before that point was processed",
                     source->current, (unsigned long long)source->stats.packets,
                     pcap_geterr(source->pcap));
            result = -1;
        }
        pcap_close(source->pcap);
        source->pcap = NULL;
        if (result < 0)
            return result;
    }
}

void capture_stop(struct capture_source *source)
{
    source->stop_requested = 1;
    if (source->pcap && source->live)
        pcap_breakloop(source->pcap);
}

const char *capture_error(const struct capture_source *source)
{
    return source->error;
}

const char *capture_current_name(const struct capture_source *source)
{
    return source->current ? source->current : "";
}

void capture_get_stats(struct capture_source *source, struct capture_stats *stats)
{
    if (source->live && source->pcap) {
        struct pcap_stat ps;
        if (pcap_stats(source->pcap, &ps) == 0) {
            source->stats.kernel_drops = ps.ps_drop;
            source->stats.interface_drops = ps.ps_ifdrop;
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
    free(source);
}
