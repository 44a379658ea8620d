#include "lib/ini.h"

#include <criterion/criterion.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Every key the reader hands out, as "key=value@file:line" lines. */
typedef struct seen {
    char text[8192];
    int n;
} seen;

static int on_key(void *ud, const char *key, const char *value, const char *file, int line)
{
    seen *s = ud;
    const char *base = strrchr(file, '/');
    size_t len = strlen(s->text);
    if (value)
        snprintf(s->text + len, sizeof(s->text) - len, "%s=%s@%s:%d\n", key, value,
                 base ? base + 1 : file, line);
    else /* a key used as a placeholder */
        snprintf(s->text + len, sizeof(s->text) - len, "(%s)@%s:%d\n", key, base ? base + 1 : file,
                 line);
    s->n++;
    return 0;
}

static char dir[256];

static void make_dir(void)
{
    snprintf(dir, sizeof(dir), "/tmp/aiserve-ini-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void cleanup_dir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(ini, .init = make_dir, .fini = cleanup_dir);

static const char *put(const char *name, const char *text)
{
    static char path[400];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
    return path;
}

static int read_str(const char *text, seen *s, char *err)
{
    char name[300];
    snprintf(name, sizeof(name), "%s/app.ini", dir);
    memset(s, 0, sizeof(*s));
    return ini_read_string(text, strlen(text), name, "uwsgi|aiserve", on_key, s, err, 512);
}

Test(ini, comment_lines_and_inline_comments_after_a_space_are_dropped)
{
    seen s;
    char err[512];
    int rc = read_str("; head\n# head\n[uwsgi] ; main section\n"
                      "http = :5000 ; the port\n"
                      "processes = 4\t# one per core\n"
                      "env = A=b;c\n"
                      "static-map = /s=/srv#x\n"
                      "logto = ;only a comment\n",
                      &s, err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_str_eq(s.text, "http=:5000@app.ini:4\n"
                             "processes=4@app.ini:5\n"
                             "env=A=b;c@app.ini:6\n"
                             "static-map=/s=/srv#x@app.ini:7\n"
                             "logto=@app.ini:8\n");
}

Test(ini, only_the_chosen_sections_are_read)
{
    seen s;
    char err[512];
    cr_assert_eq(read_str("top = 1\n[other]\na = 1\n[uwsgi]\nb = 2\n[ aiserve ]\nc = 3\n"
                          "[uwsgi-extra]\nd = 4\n",
                          &s, err),
                 0, "%s", err);
    cr_assert_str_eq(s.text, "b=2@app.ini:5\nc=3@app.ini:7\n");
}

Test(ini, file_placeholders_follow_uwsgi)
{
    seen s;
    char err[512], want[8192];
    const char *path = put("site.conf.ini", "[uwsgi]\nd = %d\np = %p\ns = %s\nn = %n\ne = %e\n"
                                            "c = %c\nx = %x\npct = 100%%\nkeep = %q%\n");
    memset(&s, 0, sizeof(s));
    cr_assert_eq(ini_read(path, "uwsgi", on_key, &s, err, sizeof(err)), 0, "%s", err);
    const char *dname = strrchr(dir, '/') + 1;
    snprintf(want, sizeof(want),
             "d=%s/@site.conf.ini:2\np=%s/site.conf.ini@site.conf.ini:3\n"
             "s=site.conf.ini@site.conf.ini:4\nn=site.conf@site.conf.ini:5\n"
             "e=ini@site.conf.ini:6\nc=%s@site.conf.ini:7\nx=%s/site.conf.ini@site.conf.ini:8\n"
             "pct=100%%@site.conf.ini:9\nkeep=%%q%%@site.conf.ini:10\n",
             dir, dir, dname, dir);
    cr_assert_str_eq(s.text, want);
}

Test(ini, named_placeholders_take_earlier_keys_and_set_placeholder)
{
    seen s;
    char err[512];
    setenv("AISERVE_INI_T", "8000", 1);
    int rc = read_str("[uwsgi]\nbase = /srv/app\nset-placeholder = venv=/opt/venv\n"
                      "chdir = %(base)/src\nhome = %(venv)\nbase = /other\nlast = %(base)\n"
                      "http = :$(AISERVE_INI_T)\nonce = %(chdir)\n",
                      &s, err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_str_eq(s.text,
                     "base=/srv/app@app.ini:2\n(base)@app.ini:4\nchdir=/srv/app/src@app.ini:4\n"
                     "home=/opt/venv@app.ini:5\nbase=/other@app.ini:6\n"
                     "(base)@app.ini:7\nlast=/other@app.ini:7\nhttp=:8000@app.ini:8\n"
                     "(chdir)@app.ini:9\nonce=/srv/app/src@app.ini:9\n");
    cr_assert_eq(read_str("[uwsgi]\na = 1\n\nb = %(nope)\n", &s, err), -1);
    cr_assert(strstr(err, "app.ini:4:") && strstr(err, "%(nope)"), "%s", err);
    cr_assert_eq(read_str("[uwsgi]\nset-ph = novalue\n", &s, err), -1);
    cr_assert(strstr(err, "app.ini:2:") && strstr(err, "NAME=VALUE"), "%s", err);
}

Test(ini, expansion_is_single_pass_and_bounded)
{
    seen s;
    char err[512];
    /* a value holding "%(x)" is not expanded again */
    cr_assert_eq(read_str("[uwsgi]\nset-ph = a=%%(a)\nb = %(a)\n", &s, err), 0, "%s", err);
    cr_assert_str_eq(s.text, "b=%(a)@app.ini:3\n");
    /* doubling line after line stops at the size bound with file:line */
    char text[4096] =
        "[uwsgi]\nv0 = xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n";
    for (int i = 1; i < 20; i++) {
        size_t len = strlen(text);
        snprintf(text + len, sizeof(text) - len, "v%d = %%(v%d)%%(v%d)%%(v%d)%%(v%d)\n", i, i - 1,
                 i - 1, i - 1, i - 1);
    }
    cr_assert_eq(read_str(text, &s, err), -1);
    cr_assert(strstr(err, "app.ini:") && strstr(err, "longer than"), "%s", err);
}

Test(ini, includes_read_in_place_from_the_including_files_directory)
{
    seen s;
    char err[512];
    char sub[300];
    snprintf(sub, sizeof(sub), "%s/conf", dir);
    cr_assert_eq(mkdir(sub, 0755), 0);
    put("conf/base.ini", "[uwsgi]\nprocesses = 2\nwhere = %n\n[prod]\nprocesses = 8\n");
    const char *top = put("conf/app.ini", "[uwsgi]\nhttp = :1\nini = base.ini\n"
                                          "include = %dbase.ini:prod\nthreads = %(processes)\n");
    char cwd[PATH_MAX];
    cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
    cr_assert_eq(chdir("/"), 0, "includes must not depend on the current directory");
    memset(&s, 0, sizeof(s));
    int rc = ini_read(top, "uwsgi|aiserve", on_key, &s, err, sizeof(err));
    cr_assert_eq(chdir(cwd), 0);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_str_eq(s.text,
                     "http=:1@app.ini:2\nprocesses=2@base.ini:2\nwhere=base@base.ini:3\n"
                     "processes=8@base.ini:5\n(processes)@app.ini:5\nthreads=8@app.ini:5\n");
}

Test(ini, a_spec_may_name_the_section)
{
    seen s = {0};
    char err[512], spec[300];
    put("multi.ini", "[uwsgi]\na = 1\n[staging]\nb = 2\n");
    snprintf(spec, sizeof(spec), "%s/multi.ini:staging", dir);
    cr_assert_eq(ini_read(spec, "uwsgi", on_key, &s, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(s.text, "b=2@multi.ini:4\n");
    char section[64];
    char *path = ini_split_spec(spec, section, sizeof(section));
    cr_assert(strstr(path, "/multi.ini") && !strcmp(section, "staging"));
    free(path);
    /* a file whose name has a colon is itself */
    const char *colon = put("odd:name.ini", "[uwsgi]\nc = 3\n");
    path = ini_split_spec(colon, section, sizeof(section));
    cr_assert_str_eq(path, colon);
    cr_assert_str_eq(section, "");
    free(path);
}

Test(ini, include_errors_name_the_including_line)
{
    seen s;
    char err[512];
    const char *self = put("loop.ini", "[uwsgi]\na = 1\nini = loop.ini\n");
    memset(&s, 0, sizeof(s));
    cr_assert_eq(ini_read(self, "uwsgi", on_key, &s, err, sizeof(err)), -1);
    cr_assert(strstr(err, "loop.ini:3:") && strstr(err, "deeper"), "%s", err);
    const char *miss = put("miss.ini", "[uwsgi]\n\nini = nowhere.ini\n");
    cr_assert_eq(ini_read(miss, "uwsgi", on_key, &s, err, sizeof(err)), -1);
    cr_assert(strstr(err, "miss.ini:3:") && strstr(err, "nowhere.ini"), "%s", err);
    put("bad.ini", "[uwsgi]\nok = 1\nnot a pair\n");
    const char *outer = put("outer.ini", "[uwsgi]\nini = bad.ini\n");
    cr_assert_eq(ini_read(outer, "uwsgi", on_key, &s, err, sizeof(err)), -1);
    cr_assert(strstr(err, "bad.ini:3:") && strstr(err, "key = value"), "%s", err);
    cr_assert_eq(ini_read("/dev/null", "uwsgi", on_key, &s, err, sizeof(err)), -1,
                 "a device is no config file");
    cr_assert(strstr(err, "not a regular file"), "%s", err);
    cr_assert_eq(ini_read("/nonexistent/x.ini", "uwsgi", on_key, &s, err, sizeof(err)), -1);
    cr_assert(strstr(err, "/nonexistent/x.ini"), "%s", err);
}

Test(ini, syntax_errors_carry_file_and_line)
{
    seen s;
    char err[512];
    struct {
        const char *text, *want;
    } cases[] = {
        {"[uwsgi]\n\n[broken\n", "app.ini:3: malformed section header"},
        {"[uwsgi]\n[]\n", "app.ini:2: empty section name"},
        {"[uwsgi]\n[a] b\n", "app.ini:2: malformed section header"},
        {"[uwsgi]\njust words\n", "app.ini:2: expected 'key = value'"},
        {"[uwsgi]\nx = 1\n = 2\n", "app.ini:3: missing key"},
        {"[other]\nnot a pair\n", "app.ini:2: expected"}, /* skipped sections still parse */
        {"[uwsgi]\nini =\n", "app.ini:2: 'ini' needs a file"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_assert_eq(read_str(cases[i].text, &s, err), -1, "%s", cases[i].text);
        cr_assert(strstr(err, cases[i].want), "%s -> %s", cases[i].text, err);
    }
}

Test(ini, bom_crlf_and_a_missing_last_newline_are_fine)
{
    seen s;
    char err[512];
    cr_assert_eq(read_str("\xEF\xBB\xBF[uwsgi]\r\na = 1 \r\nb = 2", &s, err), 0, "%s", err);
    cr_assert_str_eq(s.text, "a=1@app.ini:2\nb=2@app.ini:3\n");
}

static int stop_at_two(void *ud, const char *key, const char *value, const char *file, int line)
{
    (void)key, (void)value, (void)file;
    return line == 3 ? 7 : ((void)ud, 0);
}

Test(ini, the_callbacks_value_stops_the_reader)
{
    char err[512];
    const char *text = "[uwsgi]\na = 1\nb = 2\nc = 3\n";
    cr_assert_eq(
        ini_read_string(text, strlen(text), "x.ini", "uwsgi", stop_at_two, NULL, err, sizeof(err)),
        7);
}

Test(ini, top_file_variables_stay_those_of_the_top_file_inside_an_include)
{
    seen s = {0};
    char err[512], want[8192], sub[300];
    snprintf(sub, sizeof(sub), "%s/conf", dir);
    cr_assert_eq(mkdir(sub, 0755), 0);
    put("conf/inc.ini", "[uwsgi]\nd = %d\nD = %D\nn = %n\nN = %N\ne = %e\nE = %E\n"
                        "c = %c\nC = %C\nx = %x\nX = %X\nO = %O\n");
    const char *top = put("top.cfg", "[uwsgi]\nini = conf/inc.ini\n");
    cr_assert_eq(ini_read(top, "uwsgi", on_key, &s, err, sizeof(err)), 0, "%s", err);
    const char *dname = strrchr(dir, '/') + 1;
    snprintf(want, sizeof(want),
             "d=%s/conf/@inc.ini:2\nD=%s/@inc.ini:3\nn=inc@inc.ini:4\nN=top@inc.ini:5\n"
             "e=ini@inc.ini:6\nE=cfg@inc.ini:7\nc=conf@inc.ini:8\nC=%s@inc.ini:9\n"
             "x=%s/conf/inc.ini@inc.ini:10\nX=%s@inc.ini:11\nO=%s@inc.ini:12\n",
             dir, dir, dname, dir, top, top);
    cr_assert_str_eq(s.text, want);
}

Test(ini, system_variables_and_unset_environment)
{
    seen s;
    char err[512], want[8192], host[256] = "";
    unsetenv("AISERVE_INI_UNSET");
    long t0 = (long)time(NULL);
    cr_assert_eq(read_str("[uwsgi]\nh = %h\nk = %k\nu = %u\ng = %g\nenv = [$(AISERVE_INI_UNSET)]\n"
                          "t = %t\n",
                          &s, err),
                 0, "%s", err);
    long t1 = (long)time(NULL);
    gethostname(host, sizeof(host) - 1);
    snprintf(want, sizeof(want),
             "h=%s@app.ini:2\nk=%ld@app.ini:3\nu=%u@app.ini:4\ng=%u@app.ini:5\n"
             "env=[]@app.ini:6\nt=",
             host, sysconf(_SC_NPROCESSORS_ONLN), (unsigned)getuid(), (unsigned)getgid());
    cr_assert(!strncmp(s.text, want, strlen(want)), "%s", s.text);
    long t = atol(s.text + strlen(want));
    cr_assert(t >= t0 && t <= t1, "%%t %ld outside [%ld, %ld]", t, t0, t1);
    /* the user and group names are those of the uid and gid */
    struct passwd *pw = getpwuid(getuid());
    struct group *gr = getgrgid(getgid());
    cr_assert_eq(read_str("[uwsgi]\nU = %U\nG = %G\n", &s, err), 0, "%s", err);
    snprintf(want, sizeof(want), "U=%s@app.ini:2\nG=%s@app.ini:3\n", pw ? pw->pw_name : "",
             gr ? gr->gr_name : "");
    cr_assert_str_eq(s.text, want);
}

Test(ini, placeholders_cross_include_boundaries_and_errors_name_the_inner_file)
{
    seen s = {0};
    char err[512];
    put("ph.ini", "[uwsgi]\nset-ph = port=9001\nname = inner\n");
    const char *top = put("ph_top.ini", "[uwsgi]\ninclude = ph.ini\nhttp = :%(port)\n"
                                        "who = %(name)\n");
    cr_assert_eq(ini_read(top, "uwsgi", on_key, &s, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(s.text, "name=inner@ph.ini:3\nhttp=:9001@ph_top.ini:3\n"
                             "(name)@ph_top.ini:4\nwho=inner@ph_top.ini:4\n");
    put("ph_bad.ini", "[uwsgi]\n\nx = %(nope)\n");
    const char *outer = put("ph_outer.ini", "[uwsgi]\na = 1\ninclude = ph_bad.ini\n");
    cr_assert_eq(ini_read(outer, "uwsgi", on_key, &s, err, sizeof(err)), -1);
    cr_assert(strstr(err, "ph_bad.ini:3:") && strstr(err, "%(nope)"), "%s", err);
    /* an include naming a section the file lacks reads nothing, and is no error */
    memset(&s, 0, sizeof(s));
    put("ph_base.ini", "[uwsgi]\nb = 2\n");
    const char *nosec = put("ph_nosec.ini", "[uwsgi]\na = 1\ninclude = ph_base.ini:nosuch\n");
    cr_assert_eq(ini_read(nosec, "uwsgi", on_key, &s, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(s.text, "a=1@ph_nosec.ini:2\n");
}

Test(ini, includes_nest_ten_deep_and_no_deeper)
{
    char name[32], text[128], err[512];
    seen s = {0};
    /* c0 includes c1 ... includes c<last>: ten nested files are fine */
    for (int last = 10; last <= 11; last++) {
        for (int i = 0; i <= last; i++) {
            snprintf(name, sizeof(name), "c%d.ini", i);
            if (i < last)
                snprintf(text, sizeof(text), "[uwsgi]\nl%d = %d\nini = c%d.ini\n", i, i, i + 1);
            else
                snprintf(text, sizeof(text), "[uwsgi]\nlast = %d\n", i);
            put(name, text);
        }
        char top[400];
        snprintf(top, sizeof(top), "%s/c0.ini", dir);
        memset(&s, 0, sizeof(s));
        int rc = ini_read(top, "uwsgi", on_key, &s, err, sizeof(err));
        if (last == 10) {
            cr_assert_eq(rc, 0, "%s", err);
            cr_assert(strstr(s.text, "last=10@c10.ini:2\n"), "%s", s.text);
        } else {
            cr_assert_eq(rc, -1);
            cr_assert(strstr(err, "c10.ini:3:") && strstr(err, "deeper than 10"), "%s", err);
        }
    }
}

Test(ini, unterminated_references_are_kept_as_text)
{
    seen s;
    char err[512];
    cr_assert_eq(read_str("[uwsgi]\na = $(NOT_CLOSED\nb = %(open\n", &s, err), 0, "%s", err);
    cr_assert_str_eq(s.text, "a=$(NOT_CLOSED@app.ini:2\nb=%(open@app.ini:3\n");
}
