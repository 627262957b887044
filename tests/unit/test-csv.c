/* lib/util/csv.c: RFC 4180 records, quoting, line ends, line numbers, errors. */
#include <string.h>

#include "tap.h"
#include "util/csv.h"

/* parses text (sep) and checks the records against want: fields joined by
 * '|', records by '/' */
static int parses_as(const char *text, char sep, const char *want)
{
    struct cmr_csv c;
    struct cmr_error err = {0};
    char got[1024] = "";
    int rc, records = 0;
    cmr_csv_init(&c, text, strlen(text), sep, "t.csv");
    while ((rc = cmr_csv_next(&c, &err)) == CMR_OK) {
        if (records++)
            strcat(got, "/");
        for (int i = 0; i < c.n; i++) {
            if (i)
                strcat(got, "|");
            strcat(got, c.field[i]);
        }
    }
    cmr_csv_free(&c);
    if (rc != CMR_EOF || strcmp(got, want)) {
        diag("text '%s': rc %d (%s), got '%s', want '%s'", text, rc, err.msg, got, want);
        return 0;
    }
    return 1;
}

/* parsing text fails with a message ending in want */
static int fails_with(const char *text, size_t len, char sep, const char *want)
{
    struct cmr_csv c;
    struct cmr_error err = {0};
    int rc;
    cmr_csv_init(&c, text, len, sep, "t.csv");
    while ((rc = cmr_csv_next(&c, &err)) == CMR_OK)
        ;
    cmr_csv_free(&c);
    size_t n = strlen(err.msg), m = strlen(want);
    if (rc != CMR_EFORMAT || n < m || strcmp(err.msg + n - m, want)) {
        diag("rc %d, message '%s', want '...%s'", rc, err.msg, want);
        return 0;
    }
    return 1;
}

int main(void)
{
    tap_plan_none();
    ok(parses_as("a,b,c\n1,2,3\n", ',', "a|b|c/1|2|3"), "plain records");
    ok(parses_as("a,b\r\n1,2", ',', "a|b/1|2"), "CRLF, last record without a line end");
    ok(parses_as("a\rb\r\n", ',', "a/b"), "a lone CR ends a record");
    ok(parses_as("", ',', ""), "empty text: no record");
    ok(parses_as("\n\n", ',', "/"), "an empty line is one empty field");
    ok(parses_as(",,\n", ',', "||"), "empty fields");
    ok(parses_as("\"a,b\",\"c\"\"d\"\n", ',', "a,b|c\"d"), "quoted separator and doubled quote");
    ok(parses_as("\"multi\nline\r\nfield\",x\n", ',', "multi\nline\r\nfield|x"), "line breaks inside quotes");
    ok(parses_as("\"\"\n", ',', ""), "an empty quoted field");
    ok(parses_as("a\"b,c\n", ',', "a\"b|c"), "a quote inside an unquoted field is a character");
    ok(parses_as("a,b\tc\n", '\t', "a,b|c"), "TAB separator");

    /* line numbers: a record's first and last line */
    struct cmr_csv c;
    struct cmr_error err = {0};
    const char *t = "h1,h2\n\"x\ny\",z\nlast,1\n";
    cmr_csv_init(&c, t, strlen(t), ',', "t.csv");
    int r1 = cmr_csv_next(&c, &err);
    long l1 = c.line;
    int r2 = cmr_csv_next(&c, &err);
    long s2 = c.start_line, l2 = c.line;
    int r3 = cmr_csv_next(&c, &err);
    long s3 = c.start_line;
    ok(!r1 && !r2 && !r3 && l1 == 1 && s2 == 2 && l2 == 3 && s3 == 4,
       "line numbers follow line breaks inside quotes (1; 2-3; 4): got %ld; %ld-%ld; %ld", l1, s2, l2, s3);
    ok(cmr_csv_next(&c, &err) == CMR_EOF && cmr_csv_next(&c, &err) == CMR_EOF, "CMR_EOF at the end, again");
    cmr_csv_free(&c);

    ok(fails_with("a,b\n1,\"open\n2,3\n", 16, ',', "t.csv:2: a quoted field is not closed"),
       "an unclosed quote names the line it opened on");
    ok(fails_with("\"a\"b,c\n", 7, ',', "t.csv:1: text after a closing quote"), "text after a closing quote");
    ok(fails_with("a,b\0c\n", 6, ',', "t.csv:1: a NUL byte in a field"), "a NUL byte (unquoted)");
    ok(fails_with("\"a\0\"\n", 5, ',', "t.csv:1: a NUL byte in a field"), "a NUL byte (quoted)");

    /* the field bound: a record of CMR_CSV_MAX_FIELDS + 1 empty fields */
    size_t n = CMR_CSV_MAX_FIELDS;
    char *many = malloc(n + 1);
    memset(many, ',', n);
    many[n] = '\n';
    ok(fails_with(many, n + 1, ',', "more than 65536 fields in a record"), "at most CMR_CSV_MAX_FIELDS fields");
    ok(parses_as("a,b", ',', "a|b"), "(sanity)");
    free(many);
    return tap_done();
}
