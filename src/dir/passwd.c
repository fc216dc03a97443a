/* passwd.c - placeholder, being written. */
