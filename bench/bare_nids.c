/* bare_nids.c — the libnids floor: the capture through libpcap, Ethernet (802.1Q) and
 * IPv4 found by hand, mail-port packets only handed to libnids through
 * nids_pcap_handler() on a DLT_RAW descriptor, with mailtap's settings (TCP checksums
 * off, port-scan detection off, the same stream table size). Streams to mail ports are
 * collected in both directions and their data discarded; the file is read with the
 * buffer mailtap gives it. Prints one JSON line.
 *   bare_nids [--max-streams N] FILE */
#include "capture_file.h"

#include <nids.h>
#include <pcap/pcap.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint16_t mail_ports[] = { 25, 465, 587, 2525, 110, 995, 143, 993 };
static uint8_t collected[65536 / 8];

static struct {
    uint64_t opened, closed, reset, evicted, at_exit, data_bytes, data_calls;
    uint64_t concurrent, peak;
} st;

static bool port_collected(uint16_t port) { return collected[port >> 3] & (1u << (port & 7)); }
static uint16_t be16(const u_char *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static void stream_done(uint64_t *counter)
{
    (*counter)++;
    st.concurrent--;
}

static void on_tcp(struct tcp_stream *a, void **param)
{
    (void)param;
    switch (a->nids_state) {
    case NIDS_JUST_EST:
        if (!port_collected(a->addr.dest))
            return;
        a->client.collect++;
        a->server.collect++;
        st.opened++;
        if (++st.concurrent > st.peak)
            st.peak = st.concurrent;
        return;
    case NIDS_DATA:
        st.data_calls++;
        st.data_bytes += (uint64_t)(a->client.count_new + a->server.count_new);
        return;
    case NIDS_CLOSE: stream_done(&st.closed); return;
    case NIDS_RESET: stream_done(&st.reset); return;
    case NIDS_TIMED_OUT: stream_done(&st.evicted); return;
    case NIDS_EXITING: stream_done(&st.at_exit); return;
    default: return;
    }
}

static void on_warning(int type, int errnum, struct ip *iph, void *data)
{
    (void)type; (void)errnum; (void)iph; (void)data;
}

int main(int argc, char **argv)
{
    int max_streams = 32768;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--max-streams") && i + 1 < argc)
            max_streams = atoi(argv[++i]);
        else
            path = argv[i];
    }
    if (!path) {
        fprintf(stderr, "usage: bare_nids [--max-streams N] FILE\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof mail_ports / sizeof mail_ports[0]; i++)
        collected[mail_ports[i] >> 3] |= (uint8_t)(1u << (mail_ports[i] & 7));

    pcap_t *file = open_capture_file(path);
    if (!file)
        return 1;
    nids_params.pcap_desc = pcap_open_dead(DLT_RAW, 65535);
    nids_params.filename = NULL;
    nids_params.device = NULL;
    nids_params.n_tcp_streams = max_streams;
    nids_params.scan_num_hosts = 0;
    nids_params.tcp_workarounds = 0;
    nids_params.multiproc = 0;
    nids_params.syslog = on_warning;
    nids_params.pcap_filter = NULL;
    if (!nids_init()) {
        fprintf(stderr, "libnids: %s\n", nids_errbuf);
        return 1;
    }
    static struct nids_chksum_ctl no_checksums = { 0, 0, NIDS_DONT_CHKSUM, 0 };
    nids_register_chksum_ctl(&no_checksums, 1);
    nids_register_tcp((void *)on_tcp);

    struct pcap_pkthdr *h;
    const u_char *data;
    uint64_t packets = 0, handed = 0;
    int rc;
    while ((rc = pcap_next_ex(file, &h, &data)) == 1) {
        packets++;
        size_t off = 14;
        if (h->caplen < 14)
            continue;
        uint16_t type = be16(data + 12);
        while ((type == 0x8100 || type == 0x88a8) && h->caplen >= off + 4) {
            type = be16(data + off + 2);
            off += 4;
        }
        if (type != 0x0800 || h->caplen < off + 40)
            continue;
        const u_char *ip = data + off;
        size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
        if (ip[9] != 6 || h->caplen < off + ihl + 20)
            continue;
        const u_char *tcp = ip + ihl;
        if (!port_collected(be16(tcp)) && !port_collected(be16(tcp + 2)))
            continue;
        struct pcap_pkthdr raw = *h;
        raw.caplen -= (bpf_u_int32)off;
        raw.len = raw.caplen;
        nids_pcap_handler(NULL, &raw, (u_char *)ip);
        handed++;
    }
    pcap_close(file);
    nids_exit();
    printf("{\"packets\": %llu, \"to_nids\": %llu, \"streams\": %llu, \"closed\": %llu, "
           "\"reset\": %llu, \"evicted\": %llu, \"open_at_end\": %llu, \"data_bytes\": %llu, "
           "\"data_calls\": %llu, \"peak_concurrent\": %llu}\n",
           (unsigned long long)packets, (unsigned long long)handed, (unsigned long long)st.opened,
           (unsigned long long)st.closed, (unsigned long long)st.reset,
           (unsigned long long)st.evicted, (unsigned long long)st.at_exit,
           (unsigned long long)st.data_bytes, (unsigned long long)st.data_calls,
           (unsigned long long)st.peak);
    return rc == PCAP_ERROR;
}
