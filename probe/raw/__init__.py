"""Raw-packet witnesses (the ``raw`` extra: scapy; the NET_RAW capability).

Nothing here is imported unless ``raw`` is configured: scapy costs a second
and tens of MB to import, which a probe without NET_RAW should never pay.
Every blocking call (opening a capture, reading it, parsing with scapy,
sending a crafted packet) runs in a worker thread, never on the event loop.
"""
