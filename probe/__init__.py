"""msgprobe: messenger reachability probe for censorship measurement."""

__version__ = "0.1.0"
