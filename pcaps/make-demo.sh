#!/usr/bin/env bash
# Builds pcaps/demo.pcap, the capture `make demo` opens: every recorded scenario except the
# 2 MB big-message, merged in time order. Needs mergecap (wireshark-common).
set -euo pipefail
cd "$(dirname "$0")"
files=$(ls smtp/*.pcap pop3/*.pcap imap/*.pcap dns/*.pcap tls/*.pcap relay/*.pcap | grep -v big-message)
mergecap -F pcap -w demo.pcap $files
echo "demo.pcap: $(echo "$files" | wc -w) captures merged"
