from channels.generic.websocket import JsonWebsocketConsumer


class PingConsumer(JsonWebsocketConsumer):
    """Liveness of the websocket listener: answers every message with {"type": "pong"}."""

    def connect(self):
        self.accept()
        self.send_json({"type": "hello"})

    def receive_json(self, content, **kwargs):
        self.send_json({"type": "pong", "echo": content})
