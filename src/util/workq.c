/* workq.c - placeholder, being written. */
