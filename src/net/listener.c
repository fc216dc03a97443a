/* listener.c - placeholder, being written. */
