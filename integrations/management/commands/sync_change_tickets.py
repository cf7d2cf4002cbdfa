from django.core.management.base import BaseCommand

from integrations.models import TicketTransition
from integrations.tasks import change_tickets_take_all
from integrations.tickets import change_ticket_deliver, change_tickets_due, configured_system


class Command(BaseCommand):
    help = (
        "Take the new change request events from the audit trail and deliver every change "
        "ticket transition that is due, here and now, without the broker (what the periodic "
        "sweep hands to the workers). Transitions that fail wait for their next attempt."
    )

    def handle(self, *args, **options):
        system = configured_system()
        if system is None:
            self.stdout.write("GATEHOUSE_TICKETS is not set: change tickets are off.")
            return
        taken = change_tickets_take_all()
        delivered = sum(change_ticket_deliver(ticket_id=pk) for pk in change_tickets_due())
        waiting = TicketTransition.objects.filter(
            ticket__system=system, delivered_at__isnull=True
        ).select_related("ticket__change_request")
        self.stdout.write(
            f"{taken} event(s) taken from the trail, {delivered} transition(s) delivered to "
            f"{system}, {waiting.count()} waiting."
        )
        for transition in waiting.exclude(last_error="").order_by("event_id")[:20]:
            self.stdout.write(
                f"{transition.ticket.change_request.number} #{transition.event_id}: "
                f"{transition.attempts} attempt(s), next at {transition.next_attempt_at:%H:%M:%S}: "
                f"{transition.last_error}"
            )
