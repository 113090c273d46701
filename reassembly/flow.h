/* flow.h — a TCP connection's real endpoints (IPv4 or IPv6), as reported upward. */
#ifndef MAILTAP_FLOW_H
#define MAILTAP_FLOW_H

#include <stdint.h>

struct ip_address {
    int family;          /* 4 or 6 */
    uint8_t bytes[16];   /* IPv4 uses the first 4 */
};

struct flow {
    struct ip_address client, server;
    uint16_t client_port, server_port;
};

/* Formats an address as text (inet_ntop); buf must hold 46 bytes. */
const char *ip_address_format(const struct ip_address *address, char *buf, unsigned size);

#endif
