/* maildir.c - placeholder, being written. */
