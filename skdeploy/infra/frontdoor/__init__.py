"""The HTTPS front door: a Lambda function behind API Gateway that invokes the endpoint."""
