#include "server/wsgi/conf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

Test(wsgi_conf, module_spec_names_module_and_callable)
{
    wsgi_target t;
    char err[128];
    cr_assert_eq(wsgi_target_parse(&t, "demo:app", NULL, err, sizeof(err)), 0);
    cr_assert_str_eq(t.module, "demo");
    cr_assert_str_eq(t.callable, "app");
    cr_assert_null(t.file);
    wsgi_target_free(&t);
    cr_assert_eq(wsgi_target_parse(&t, "pkg.sub.wsgi", NULL, err, sizeof(err)), 0);
    cr_assert_str_eq(t.callable, "application", "the default callable is uWSGI's");
    wsgi_target_free(&t);
    cr_assert_eq(wsgi_target_parse(&t, "pkg.wsgi", "srv", err, sizeof(err)), 0);
    cr_assert_str_eq(t.callable, "srv");
    wsgi_target_free(&t);
}

Test(wsgi_conf, file_spec_is_recognised_by_slash_or_py_suffix)
{
    wsgi_target t;
    char err[128];
    cr_assert_eq(wsgi_target_parse(&t, "apps/hello.py:app", NULL, err, sizeof(err)), 0);
    cr_assert_str_eq(t.file, "apps/hello.py");
    cr_assert_str_eq(t.callable, "app");
    wsgi_target_free(&t);
    cr_assert_eq(wsgi_target_parse(&t, "hello.py", NULL, err, sizeof(err)), 0);
    cr_assert_str_eq(t.file, "hello.py");
    wsgi_target_free(&t);
}

Test(wsgi_conf, bad_specs_are_refused_with_a_message)
{
    wsgi_target t;
    char err[128];
    const char *bad[] = {"",         ":app",    "demo:",      "demo:1x", "9mod:app",
                         "a..b:app", "a b:app", "demo:app-x", "mod.:x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        err[0] = 0;
        cr_assert_eq(wsgi_target_parse(&t, bad[i], NULL, err, sizeof(err)), -EINVAL, "%s", bad[i]);
        cr_assert_neq(err[0], 0, "a message for '%s'", bad[i]);
    }
}

Test(wsgi_conf, options_apply_and_bad_values_are_refused)
{
    wsgi_conf c;
    char err[128];
    wsgi_conf_init(&c);
    cr_assert_eq(c.need_app, 1, "need-app defaults on");
    cr_assert_eq(c.threads, 1);
    cr_assert_eq(wsgi_conf_module(&c, "module", "demo:app", err, sizeof(err)), 0);
    cr_assert_eq(wsgi_conf_pythonpath(&c, "pythonpath", "/a", err, sizeof(err)), 0);
    cr_assert_eq(wsgi_conf_pythonpath(&c, "pythonpath", "/b", err, sizeof(err)), 0);
    cr_assert_eq(wsgi_conf_env(&c, "env", "A=1=2", err, sizeof(err)), 0);
    cr_assert_eq(wsgi_conf_home(&c, "home", "/venv", err, sizeof(err)), 0);
    cr_assert_eq(c.npythonpath, 2);
    cr_assert_str_eq(c.pythonpath[1], "/b");
    cr_assert_str_eq(c.env[0], "A=1=2");
    cr_assert_str_eq(c.home, "/venv");
    cr_assert(wsgi_conf_has_app(&c));
    cr_assert_eq(wsgi_conf_env(&c, "env", "novalue", err, sizeof(err)), -EINVAL);
    cr_assert_str_eq(err, "env = 'novalue': expected KEY=VALUE");
    cr_assert_eq(wsgi_conf_env(&c, "env", "=x", err, sizeof(err)), -EINVAL);
    cr_assert_eq(wsgi_conf_home(&c, "home", "", err, sizeof(err)), -EINVAL);
    cr_assert_str_eq(err, "home: empty path", "the message names the option given");
    cr_assert_eq(wsgi_conf_wsgi_file(&c, "wsgi-file", "", err, sizeof(err)), -EINVAL);
    cr_assert_eq(wsgi_conf_chdir(&c, "chdir", "", err, sizeof(err)), -EINVAL);
    cr_assert_eq(wsgi_conf_pythonpath(&c, "pythonpath", "", err, sizeof(err)), -EINVAL);
    cr_assert_eq(wsgi_conf_callable(&c, "callable", "not valid", err, sizeof(err)), -EINVAL);
    cr_assert_eq(wsgi_conf_module(&c, "module", "9x:app", err, sizeof(err)), -EINVAL);
    cr_assert_str_eq(c.module, "demo:app", "a refused value leaves the old one");
    cr_assert_eq(c.npythonpath, 2);
    wsgi_conf_free(&c);
}

Test(wsgi_conf, mounts_sort_longest_first_and_match_at_segment_boundaries)
{
    wsgi_conf c;
    char err[128];
    wsgi_conf_init(&c);
    cr_assert_eq(wsgi_conf_mount(&c, "mount", "/api=api.wsgi:app", err, sizeof(err)), 0);
    cr_assert_eq(wsgi_conf_mount(&c, "mount", "/api/v2/=v2:app", err, sizeof(err)), 0);
    cr_assert_eq(wsgi_conf_module(&c, "module", "site:application", err, sizeof(err)), 0);
    cr_assert_eq(wsgi_conf_mount(&c, "mount", "/api=other:app", err, sizeof(err)), -EINVAL,
                 "a prefix mounted twice is refused");
    cr_assert_eq(wsgi_conf_mount(&c, "mount", "api=x:app", err, sizeof(err)), -EINVAL);
    cr_assert_eq(wsgi_conf_mount(&c, "mount", "/x", err, sizeof(err)), -EINVAL);
    wsgi_mount *m;
    int n = wsgi_conf_mounts(&c, &m, err, sizeof(err));
    cr_assert_eq(n, 3);
    cr_assert_str_eq(m[0].prefix, "/api/v2");
    cr_assert_str_eq(m[1].prefix, "/api");
    cr_assert_str_eq(m[2].prefix, "");
    cr_assert_str_eq(m[2].target.module, "site");
    size_t sl;
    cr_assert_eq(wsgi_mount_match(m, 3, "/api/v2/x", 9, &sl), 0);
    cr_assert_eq(sl, 7);
    cr_assert_eq(wsgi_mount_match(m, 3, "/api", 4, &sl), 1);
    cr_assert_eq(wsgi_mount_match(m, 3, "/apix", 5, &sl), 2, "no match inside a segment");
    cr_assert_eq(sl, 0);
    wsgi_mounts_free(m, (size_t)n);
    wsgi_conf_free(&c);
}

Test(wsgi_conf, root_mount_conflicts_with_module)
{
    wsgi_conf c;
    char err[128];
    wsgi_conf_init(&c);
    cr_assert_eq(wsgi_conf_mount(&c, "mount", "/=a:app", err, sizeof(err)), 0);
    cr_assert_eq(wsgi_conf_wsgi_file(&c, "wsgi-file", "b.py", err, sizeof(err)), 0);
    wsgi_mount *m;
    cr_assert_eq(wsgi_conf_mounts(&c, &m, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "conflicts"));
    wsgi_conf_free(&c);
}
