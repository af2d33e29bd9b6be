"""Build and package the service for AWS (CloudFormation)."""
