"""The parser that events.init_command_line_parser listeners add their own
arguments to (Locust's LocustArgumentParser: argparse plus env_var=,
include_in_web_ui= and is_secret=)."""
import argparse
import os


class LocustArgumentParser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("add_help", False)
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.env_vars = {}

    def add_argument(self, *args, **kwargs):
        env = kwargs.pop("env_var", None)
        include_in_web_ui = kwargs.pop("include_in_web_ui", True)
        is_secret = kwargs.pop("is_secret", False)
        action = super().add_argument(*args, **kwargs)
        action.include_in_web_ui = include_in_web_ui
        action.is_secret = is_secret
        if env is None and action.option_strings:
            long = [o for o in action.option_strings if o.startswith("--")]
            if long:
                env = "LOCUST_" + long[0][2:].upper().replace("-", "_")
        if env:
            self.env_vars[action.dest] = (env, action)
        return action

    def add_argument_group(self, *args, **kwargs):
        group = super().add_argument_group(*args, **kwargs)
        parser = self
        orig = group.add_argument

        def add(*a, **kw):
            env = kw.pop("env_var", None)
            include = kw.pop("include_in_web_ui", True)
            secret = kw.pop("is_secret", False)
            action = orig(*a, **kw)
            action.include_in_web_ui, action.is_secret = include, secret
            if env:
                parser.env_vars[action.dest] = (env, action)
            return action

        group.add_argument = add
        return group

    def apply_env(self, ns, given):
        """Values from env_var for the options not given on the command line."""
        for dest, (env, action) in self.env_vars.items():
            if dest in given or env not in os.environ:
                continue
            raw = os.environ[env]
            if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
                val = raw.lower() in ("1", "true", "yes", "on")
                if isinstance(action, argparse._StoreFalseAction):
                    val = not val
            else:
                val = action.type(raw) if action.type else raw
            setattr(ns, dest, val)


def get_parser():
    return LocustArgumentParser(prog="aiload")
