"""Store of learned programs and versions of the shared neural library."""
