/* localnets.h — the "local networks" that decide a session's direction: a session whose
 * server is outside them is Outbound SMTP (our server sending out), else Inbound. */
#ifndef MAILTAP_LOCALNETS_H
#define MAILTAP_LOCALNETS_H

#include "reassembly/flow.h"

#include <stdbool.h>

#define LOCALNETS_MAX 64

struct localnet {
    struct ip_address base;
    int prefix;
};

struct localnets {
    struct localnet nets[LOCALNETS_MAX];
    int count;
};

/* RFC 1918, loopback, link-local, fc00::/7, fe80::/10, ::1. */
void localnets_defaults(struct localnets *nets);
/* Adds "10.1.0.0/16", "2001:db8::/32" or a bare address. Returns false on bad text or
 * a full list. */
bool localnets_add(struct localnets *nets, const char *cidr);
bool localnets_contains(const struct localnets *nets, const struct ip_address *address);

#endif
