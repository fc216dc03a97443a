/* reply.c - placeholder, being written. */
