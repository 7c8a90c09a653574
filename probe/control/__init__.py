"""The control peer: a msgprobe in an uncensored network that measures for probes."""
