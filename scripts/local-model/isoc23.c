/* C23 names of strtol & co. (glibc 2.38) for an older glibc: see install.sh. */
#include <stdlib.h>
#include <stdio.h>
#include <stdarg.h>
long __isoc23_strtol(const char *s, char **e, int b){ return strtol(s,e,b); }
unsigned long __isoc23_strtoul(const char *s, char **e, int b){ return strtoul(s,e,b); }
long long __isoc23_strtoll(const char *s, char **e, int b){ return strtoll(s,e,b); }
unsigned long long __isoc23_strtoull(const char *s, char **e, int b){ return strtoull(s,e,b); }
int __isoc23_sscanf(const char *s, const char *f, ...){ va_list ap; va_start(ap,f); int r=vsscanf(s,f,ap); va_end(ap); return r; }
int __isoc23_vsscanf(const char *s, const char *f, va_list ap){ return vsscanf(s,f,ap); }
int __isoc23_fscanf(FILE *fp, const char *f, ...){ va_list ap; va_start(ap,f); int r=vfscanf(fp,f,ap); va_end(ap); return r; }
