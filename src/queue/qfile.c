/* qfile.c - placeholder, being written. */
