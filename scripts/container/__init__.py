"""The volunteer's image and compose stack, built and run for real.

`scripts/container/run` (what `make container` and CI call) starts a
private Docker engine, makes the base images from Debian packages (no
container registry is reachable here), builds the committed Dockerfile from
a copy of the tree made under umask 077, runs the image locked down and
brings the volunteer stack up against a receiver on loopback. Everything it
starts is torn down whatever happens. What works on these machines, and
why each step is done this way: ../shared/research/container-build.md.
"""
