"""The embedded local stack: an AWS endpoint (moto server), the WeChat Pay simulator,
the Chalice app's HTTP server, and a small driver that feeds SQS messages and timer
ticks to the Lambda handlers, the way AWS would. Not part of the Lambda bundle."""
