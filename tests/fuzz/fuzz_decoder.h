/* fuzz_decoder.h — the shared bodies of the fuzz targets: one decoder on a byte sequence
 * (fuzz_smtp, fuzz_pop3, fuzz_imap), and the packet path from a link-layer frame to the
 * decoders (fuzz_packet, fuzz_pcapfile). */
#ifndef MAILTAP_FUZZ_DECODER_H
#define MAILTAP_FUZZ_DECODER_H

#include "protocols/decoder.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Runs one input (chunk format: fuzz_check.h) through decoder open/data/close/free on a
 * fresh session, then checks the session invariants and the password rule. */
int fuzz_decoder_run(const struct mt_decoder *decoder, const uint8_t *data, size_t size);

/* ---- The packet path ---------------------------------------------------------------
 * link_find_ip → reassembly_ip_packet (libnids) → protocols/connection.c, the pipeline's
 * own per-connection code (decoders, tls_follow_*; with DNS, dnswatch: UDP and TCP port
 * 53), with no store: every finished session, attempt and DNS row is checked against the
 * invariants of fuzz_check.h and freed, and every stream opened() must be closed()
 * exactly once. libnids is process-global: one path per process.
 *
 * Collected: SMTP 25 465 587 2525, POP3 110 995, IMAP 143 993, and 2526 1110 1143 as a
 * bare --port (protocol read from the greeting; the recorded captures use them), DNS 53
 * when enabled; a small stream table (64: libnids
 * evicts at 48) and 16 pending attempts, so that eviction and attempt overflow are
 * reachable. Directions come from the default local networks, as in mailtap. */
void fuzz_path_init(bool dns);

/* Starts reassembly (and, with DNS enabled and dns_possible, a dns_watch: it costs
 * ~18 ms under ASan, so pass false when the input cannot hold port 53 — no DNS packet
 * means no DNS row whatever the mail sessions say). No-op when already running. */
void fuzz_path_start(bool dns_possible);
bool fuzz_path_running(void);

/* One frame of link type dlt captured at now_us: copied to a buffer of exactly len
 * bytes (so ASan sees any read past it), link_find_ip's answer checked, then handed to
 * reassembly. Returns link_find_ip's result. */
int fuzz_path_frame(int dlt, const uint8_t *frame, size_t len, int64_t now_us);

/* The pipeline's once-a-second timers: reassembly_tick, dns_watch_tick. */
void fuzz_path_tick(int64_t now_us);

/* End of input, as cli/pipeline.c: reassembly_finish(reassembly_now_us), then
 * dns_watch_finish(dns_now_us) and free. Fails unless every opened stream was closed. */
void fuzz_path_finish(int64_t reassembly_now_us, int64_t dns_now_us);

#endif
