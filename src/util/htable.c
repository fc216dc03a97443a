/* htable.c - placeholder, being written. */
