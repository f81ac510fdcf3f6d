#!/usr/bin/env python3
"""CDK entry point: `cdk synth|deploy --all [-c env=prod]` (environments live in cdk.json)."""

from o2v_core.settings import load_settings

from stacks.app_builder import build, new_app

app = new_app()
# Read and validate the chosen environment into one settings object before any stack exists:
# a bad value stops synth here, with the key and the allowed values in the message.
settings = load_settings(app.node.try_get_context)
build(app, settings)
app.synth()
