"""The plumbing every step uses: outputs written whole (atomic), Ctrl-C and SIGTERM (signals), progress bars."""
