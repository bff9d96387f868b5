"""The master's HTTP surface: generic ``/api/v1beta1/{resource}`` routes (``objects``) over one module per
resource, each reading the ``registry``; shared errors, auth and request bodies beside them; day-2 routers (events, pod
logs, the dashboard) mounted by ``day2``."""
