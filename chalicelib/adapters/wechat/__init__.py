"""WeChat Pay API v3, the only code that imports the ``wechatpayv3`` SDK, always lazily (the SDK
pulls in ``cryptography`` and ``requests``, ~100+ ms, which importing this package must not cost
a Lambda cold start). Import each name from the module that owns it:

- ``errors``: the ``WechatError`` hierarchy and the translation of SDK exceptions and HTTP answers;
- ``results``: typed refunds, payments and notification events, and WeChat's vocabularies;
- ``gateway``: ``WechatGateway`` (the calls) and ``get_gateway`` / ``reset_gateway``;
- ``notifications``: verify -> decrypt -> validate of a notification;
- ``bills``: the trade bill download, its SHA1 check and ``TradeBill``;
- ``complaints``: consumer complaints (投诉2.0): list, detail, history, the merchant's answers,
  images, the notify URL, and COMPLAINT.* notifications;
- ``keys``: the merchant key, platform certificates or public key, and the SDK client.

Secrets, request bodies and decrypted notifications are never logged, and the SDK's debug
logger is never enabled.
"""
