/* msgdata.c - placeholder, being written. */
