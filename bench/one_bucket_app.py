"""The smallest useful CDK app (one stack, one S3 bucket): the baseline of the synth-time ratio.

Run like app.py (``python bench/one_bucket_app.py``); writes to ``$CDK_OUTDIR`` as the CLI sets it.
"""

from aws_cdk import App, Stack, aws_s3

app = App()
stack = Stack(app, "one-bucket")
aws_s3.Bucket(stack, "Bucket")
app.synth()
