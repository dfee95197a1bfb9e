"""The JavaScript sandbox: users' browser filters evaluated in V8 (mini-racer), isolated per tenant."""
