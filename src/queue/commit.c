/* commit.c - placeholder, being written. */
