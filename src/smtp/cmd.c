/* cmd.c - placeholder, being written. */
